//! Settings: the `testbed`, `state` and `platform` blocks.

#[allow(unused_imports)]
use super::*;

impl Evaluator<'_> {
    pub(super) fn eval_settings(
        &mut self,
    ) -> (
        String,
        Option<String>,
        StateBackendConfig,
        Vec<PlatformConfig>,
    ) {
        let blocks = self.blocks.clone();
        let rep = Repetition::default();
        let mut name = self
            .opts
            .dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "testbed".into());
        let mut description = None;
        let mut state = StateBackendConfig::Sqlite;
        let mut platforms = Vec::new();
        for b in blocks.iter() {
            match b.kind.as_str() {
                "testbed" => {
                    if let Some(n) = self.eval_string(b, "name", &rep) {
                        name = n;
                    }
                    description = self.eval_string(b, "description", &rep);
                }
                "state" => {
                    let backend = self
                        .eval_string(b, "backend", &rep)
                        .unwrap_or_else(|| "sqlite".into());
                    state = match backend.as_str() {
                        "sqlite" => match self.eval_string(b, "path", &rep) {
                            Some(p) => StateBackendConfig::SqlitePath(p),
                            None => StateBackendConfig::Sqlite,
                        },
                        "postgres" => {
                            match self.eval_string(b, "url", &rep) {
                                Some(url) => StateBackendConfig::Postgres { url },
                                None => {
                                    self.err(Diagnostic::error("the postgres backend needs a `url`").at(b.span.clone()).help("add `url = env(\"TG_PG_URL\")` or a `postgres://` URL"));
                                    StateBackendConfig::Sqlite
                                }
                            }
                        }
                        other => {
                            let span = b
                                .attr("backend")
                                .map(|a| a.expr_span.clone())
                                .unwrap_or(b.span.clone());
                            let mut d =
                                Diagnostic::error(format!("unknown state backend `{other}`"))
                                    .at(span);
                            d = match did_you_mean(other, ["sqlite", "postgres"]) {
                                Some(s) => d.help(format!("did you mean `{s}`?")),
                                None => d.help("backends are `sqlite` (default) and `postgres`"),
                            };
                            self.err(d);
                            StateBackendConfig::Sqlite
                        }
                    };
                }
                "platform" => {
                    let driver = b.labels[0].clone();
                    if !["ssh", "netns"].contains(&driver.as_str()) {
                        let mut d =
                            Diagnostic::error(format!("unknown platform driver `{driver}`"))
                                .at(b.span.clone());
                        d = match did_you_mean(&driver, ["ssh", "netns"]) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help("drivers are `netns` and `ssh`"),
                        };
                        self.err(d);
                        continue;
                    }
                    let mut attributes = BTreeMap::new();
                    for (k, a) in &b.attrs {
                        if let Some(v) = self.eval(&a.clone(), &rep) {
                            attributes.insert(k.clone(), to_json(&v));
                        }
                    }
                    let mut hosts = Vec::new();
                    for h in b.blocks_of("host") {
                        let address = self.eval_string(h, "address", &rep).unwrap_or_default();
                        let profile = self.eval_string(h, "profile", &rep);
                        if let Some(p) = &profile {
                            if !self.profiles.contains_key(p) {
                                let span = h
                                    .attr("profile")
                                    .map(|a| a.expr_span.clone())
                                    .unwrap_or(h.span.clone());
                                self.err(
                                    Diagnostic::error(format!("unknown profile `{p}`")).at(span),
                                );
                            }
                        }
                        hosts.push(PoolHost {
                            name: h.label().to_string(),
                            address,
                            profile,
                        });
                    }
                    platforms.push(PlatformConfig {
                        driver,
                        name: b.labels[1].clone(),
                        attributes,
                        hosts,
                    });
                }
                _ => {}
            }
        }
        (name, description, state, platforms)
    }
}
