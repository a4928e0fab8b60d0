//! Evidence: what a claim observed (raw command output, pcap files), kept in memory while the
//! claim runs and written under `target/calico-conformance/<run-id>/<claim-id>/<case>/` when
//! it fails (or always, with `CALICO_EVIDENCE=always`).

use crate::capture::CaptureResult;
use crate::observe::Observed;
use std::path::PathBuf;
use std::sync::Mutex;

/// The evidence of one claim case.
pub struct Evidence {
    dir: PathBuf,
    items: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Evidence {
    /// Evidence for `claim_id` (`POD-R1`) in `case` (`lab-none/test-tools`).
    pub fn new(claim_id: &str, case: &str) -> Self {
        let case = case.replace(['/', ' ', ':'], "_");
        Evidence {
            dir: crate::run::evidence_root().join(claim_id).join(case),
            items: Mutex::new(Vec::new()),
        }
    }

    /// Where the evidence is (or will be) written.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Keeps `bytes` under `name`.
    pub fn add(&self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.push((sanitize(&name.into()), bytes.into()));
    }

    /// Keeps a command's raw output, named after its place and command ([`observed_name`]).
    pub fn observed<T>(&self, o: &Observed<T>) {
        self.add(observed_name(o), o.raw.clone());
    }

    /// Keeps a capture as a pcap file ([`capture_name`]).
    pub fn capture(&self, c: &CaptureResult) {
        self.add(capture_name(&c.label), c.pcap.clone());
    }

    /// Everything kept so far, by file name.
    pub fn items(&self) -> Vec<(String, Vec<u8>)> {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keeps `items` (another case's evidence, e.g. of a recording several claims judge).
    pub fn include(&self, items: &[(String, Vec<u8>)]) {
        let mut mine = self.items.lock().unwrap_or_else(|p| p.into_inner());
        mine.extend(items.iter().cloned());
    }

    /// The names of the files kept so far, each once, in the order first kept.
    pub fn names(&self) -> Vec<String> {
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = Vec::new();
        for (name, _) in items.iter() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// Writes everything kept so far; returns the folder (or why it could not be written).
    pub fn write(&self) -> Result<PathBuf, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        for (name, bytes) in items.iter() {
            let path = self.dir.join(name);
            std::fs::write(&path, bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(self.dir.clone())
    }

    /// True when `CALICO_EVIDENCE=always` asks for evidence of passing claims too.
    pub fn always() -> bool {
        std::env::var("CALICO_EVIDENCE").is_ok_and(|v| v == "always")
    }
}

/// The file name a command's output is kept under: `<place> - <command>.out`, sanitised.
pub fn observed_name<T>(o: &Observed<T>) -> String {
    sanitize(&format!("{} - {}.out", o.place, o.command))
}

/// The file name a capture labelled `<place> <iface>` is kept under, sanitised.
pub fn capture_name(label: &str) -> String {
    sanitize(&format!("{label}.pcap"))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '/' | '\\' | '\0' => '_',
            ' ' => '_',
            c => c,
        })
        .collect()
}
