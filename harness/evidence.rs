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

    /// Keeps a command's raw output, named after its place and command.
    pub fn observed<T>(&self, o: &Observed<T>) {
        self.add(format!("{} - {}.out", o.place, o.command), o.raw.clone());
    }

    /// Keeps a capture as a pcap file.
    pub fn capture(&self, c: &CaptureResult) {
        self.add(format!("{}.pcap", c.label), c.pcap.clone());
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

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '/' | '\\' | '\0' => '_',
            ' ' => '_',
            c => c,
        })
        .collect()
}
