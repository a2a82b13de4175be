//! Saved plans (`tg plan -out FILE`, `tg apply FILE`, `tg show FILE`).
//!
//! A plan file is JSON: the [`Plan`] plus what is needed to check, at apply
//! time, that it still fits (session, lineage, serial, testbed hash, tg
//! version) and the variable arguments to load the testbed the same way
//! again. Staleness checks live here; applying does not.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Plan;

/// The plan file format version this tg writes and reads.
pub const PLANFILE_VERSION: u32 = 1;

/// A saved plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub planfile_version: u32,
    /// `-var` arguments the plan was made with.
    #[serde(default)]
    pub vars: Vec<String>,
    /// `-var-file` arguments the plan was made with.
    #[serde(default)]
    pub var_files: Vec<PathBuf>,
    pub plan: Plan,
}

/// Why a plan file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read the plan file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the plan file `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a tg plan file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("the plan file `{path}` has format version {found}, this tg reads version {known}: make the plan again with this tg")]
    Version {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("the plan was made for session `{planned}` but this is session `{current}`: use `--session {planned}` or make a new plan")]
    WrongSession { planned: String, current: String },
    #[error("the plan was made at serial {plan_serial} of lineage {plan_lineage} but the state is now at serial {serial}{lineage_note}: run `tg plan` again")]
    Stale {
        plan_serial: u64,
        plan_lineage: String,
        serial: u64,
        lineage_note: String,
    },
    #[error("the testbed changed since the plan was made (its files or variables differ): run `tg plan` again")]
    TestbedChanged,
}

impl PlanFile {
    pub fn new(plan: Plan, vars: Vec<String>, var_files: Vec<PathBuf>) -> PlanFile {
        PlanFile {
            planfile_version: PLANFILE_VERSION,
            vars,
            var_files,
            plan,
        }
    }

    /// Write atomically (temp file then rename).
    pub fn save(&self, path: &Path) -> Result<(), PlanFileError> {
        let err = |source| PlanFileError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| err(std::io::Error::other(e.to_string())))?;
        // 0600 whatever the umask: a plan holds every planned value,
        // sensitive ones included.
        let tmp = path.with_extension("tmp-tgplan");
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&text)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(e));
        }
        std::fs::rename(&tmp, path).map_err(err)
    }

    pub fn load(path: &Path) -> Result<PlanFile, PlanFileError> {
        let bytes = std::fs::read(path).map_err(|source| PlanFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| PlanFileError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let found = v
            .get("planfile_version")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| PlanFileError::Invalid {
                path: path.to_path_buf(),
                reason: "it has no `planfile_version`".into(),
            })? as u32;
        if found != PLANFILE_VERSION {
            return Err(PlanFileError::Version {
                path: path.to_path_buf(),
                found,
                known: PLANFILE_VERSION,
            });
        }
        serde_json::from_value(v).map_err(|e| PlanFileError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Refuse a plan made for another session, another state or another testbed.
    pub fn check_current(
        &self,
        session: &str,
        lineage: &str,
        serial: u64,
        testbed_hash: &str,
    ) -> Result<(), PlanFileError> {
        let p = &self.plan;
        if p.session != session {
            return Err(PlanFileError::WrongSession {
                planned: p.session.clone(),
                current: session.to_string(),
            });
        }
        if p.lineage != lineage || p.serial != serial {
            return Err(PlanFileError::Stale {
                plan_serial: p.serial,
                plan_lineage: p.lineage.clone(),
                serial,
                lineage_note: if p.lineage != lineage {
                    format!(" of lineage {lineage}")
                } else {
                    String::new()
                },
            });
        }
        if p.testbed_hash != testbed_hash {
            return Err(PlanFileError::TestbedChanged);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            session: "default".into(),
            lineage: "L".into(),
            serial: 3,
            testbed_hash: "H".into(),
            tg_version: "0.1.0".into(),
            destroy: false,
            refresh_only: false,
            targeted: false,
            changes: vec![],
            drift: vec![],
            warnings: vec![],
            outputs: Default::default(),
            moves: Vec::new(),
        }
    }

    #[test]
    fn round_trips_and_refuses_stale_plans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.tgplan");
        PlanFile::new(plan(), vec!["a=1".into()], vec![])
            .save(&path)
            .unwrap();
        let f = PlanFile::load(&path).unwrap();
        assert_eq!(f.vars, ["a=1"]);
        f.check_current("default", "L", 3, "H").unwrap();
        let e = f.check_current("default", "L", 5, "H").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the plan was made at serial 3 of lineage L but the state is now at serial 5: run `tg plan` again"
        );
        assert!(matches!(
            f.check_current("default", "L", 3, "X"),
            Err(PlanFileError::TestbedChanged)
        ));
        assert!(matches!(
            f.check_current("other", "L", 3, "H"),
            Err(PlanFileError::WrongSession { .. })
        ));
    }

    #[test]
    fn garbage_is_not_a_plan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(
            PlanFile::load(&path),
            Err(PlanFileError::Invalid { .. })
        ));
    }
}
