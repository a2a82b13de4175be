//! Settings: the `testbed`, `state` and `platform` blocks, and which
//! variables and locals the `state` and `platform` blocks need (all that
//! [`Evaluator::run_settings`] evaluates).

use std::collections::{BTreeMap, HashSet};

use super::{to_json, Evaluator, Repetition};
use crate::config::decode::RawBlock;
use crate::config::model::{PlatformConfig, PoolHost, StateBackendConfig};
use crate::config::{refs, Settings};
use crate::diagnostics::{did_you_mean, Diagnostic};

impl Evaluator<'_> {
    /// The `testbed` block: its name (the directory's by default) and description.
    pub(super) fn eval_testbed_block(&mut self) -> (String, Option<String>) {
        let rep = Repetition::default();
        let mut name = self
            .opts
            .dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "testbed".into());
        let mut description = None;
        for b in self.blocks.iter().filter(|b| b.kind == "testbed") {
            if let Some(n) = self.eval_string(b, "name", &rep) {
                name = n;
            }
            description = self.eval_string(b, "description", &rep);
        }
        (name, description)
    }

    /// The `state` and `platform` blocks.
    pub(super) fn eval_state_and_platforms(&mut self) -> Settings {
        let mut settings = Settings::default();
        for b in self.blocks.iter() {
            match b.kind.as_str() {
                "state" => settings.state = self.eval_state(b),
                "platform" => {
                    if let Some(p) = self.eval_platform(b) {
                        settings.platforms.push(p);
                    }
                }
                _ => {}
            }
        }
        settings
    }

    fn eval_state(&mut self, b: &RawBlock) -> StateBackendConfig {
        let rep = Repetition::default();
        let backend = self
            .eval_string(b, "backend", &rep)
            .unwrap_or_else(|| "sqlite".into());
        match backend.as_str() {
            "sqlite" => match self.eval_string(b, "path", &rep) {
                Some(p) => StateBackendConfig::SqlitePath(p),
                None => StateBackendConfig::Sqlite,
            },
            "postgres" => match self.eval_string(b, "url", &rep) {
                Some(url) => StateBackendConfig::Postgres { url },
                None => {
                    self.err(
                        Diagnostic::error("the postgres backend needs a `url`")
                            .at(b.span.clone())
                            .help("add `url = env(\"TG_PG_URL\")` or a `postgres://` URL"),
                    );
                    StateBackendConfig::Sqlite
                }
            },
            other => {
                let span = b
                    .attr("backend")
                    .map(|a| a.expr_span.clone())
                    .unwrap_or(b.span.clone());
                let mut d = Diagnostic::error(format!("unknown state backend `{other}`")).at(span);
                d = match did_you_mean(other, ["sqlite", "postgres"]) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("backends are `sqlite` (default) and `postgres`"),
                };
                self.err(d);
                StateBackendConfig::Sqlite
            }
        }
    }

    /// A `platform "KIND" "NAME"` block: KIND must be a kind the caller offers.
    fn eval_platform(&mut self, b: &RawBlock) -> Option<PlatformConfig> {
        let rep = Repetition::default();
        let driver = b.labels[0].clone();
        let kinds = &self.opts.drivers;
        if !kinds.contains(&driver) {
            let listed = kinds
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut d =
                Diagnostic::error(format!("unknown platform kind `{driver}`")).at(b.span.clone());
            d = match did_you_mean(&driver, kinds.iter().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{s}`? (platform kinds: {listed})")),
                None if kinds.is_empty() => d.help("no platform kind is available here"),
                None => d.help(format!("platform kinds: {listed}")),
            };
            self.err(d);
            return None;
        }
        let mut attributes = BTreeMap::new();
        for (k, a) in &b.attrs {
            if let Some(v) = self.eval(a, &rep) {
                attributes.insert(k.clone(), to_json(&v));
            }
        }
        let hosts = b
            .blocks_of("host")
            .filter_map(|h| self.eval_pool_host(h))
            .collect();
        Some(PlatformConfig {
            driver,
            name: b.labels[1].clone(),
            attributes,
            hosts,
        })
    }

    /// A `host "NAME" { ... }` of a pool.
    fn eval_pool_host(&mut self, h: &RawBlock) -> Option<PoolHost> {
        let rep = Repetition::default();
        let errors = self.diags.error_count();
        let address = self.eval_string(h, "address", &rep).unwrap_or_default();
        let port = match h.attr("port") {
            None => None,
            Some(a) => match self.eval(a, &rep) {
                None => None,
                Some(v) => match v.as_u64().filter(|p| (1..=65535).contains(p)) {
                    Some(p) => Some(p as u16),
                    None => {
                        self.err(
                            Diagnostic::error(format!(
                                "`port` must be a port number from 1 to 65535, found {}",
                                crate::config::types::describe(&v)
                            ))
                            .at(a.expr_span.clone())
                            .help("write `port = 22`"),
                        );
                        None
                    }
                },
            },
        };
        let user = self.eval_string(h, "user", &rep);
        let profile = self.eval_string(h, "profile", &rep);
        if let Some(p) = &profile {
            if !self.decl.is_declared("profile", p) {
                let span = h
                    .attr("profile")
                    .map(|a| a.expr_span.clone())
                    .unwrap_or(h.span.clone());
                let known = self.decl.names_of("profile");
                let mut d = Diagnostic::error(format!("unknown profile `{p}`")).at(span);
                d = match did_you_mean(p, known.iter().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None if known.is_empty() => d.help("declare it with a `profile` block"),
                    None => d.help(format!("declared profiles: {}", known.join(", "))),
                };
                self.err(d);
            }
        }
        let image = self.eval_string(h, "image", &rep);
        if let (Some(img), Some(a)) = (&image, h.attr("image")) {
            self.check_image(img, a.expr_span.clone());
        }
        let labels = self.eval_labels(h, &rep).unwrap_or_default();
        let cpus = self.eval_cpus(h, &rep);
        let memory_mib = self.eval_memory(h, &rep);
        (self.diags.error_count() == errors).then(|| PoolHost {
            name: h.label().to_string(),
            address,
            port,
            user,
            profile,
            image,
            labels,
            cpus,
            memory_mib,
        })
    }

    /// The variables and locals the `state` and `platform` blocks use,
    /// directly or through locals and variable validations.
    pub(super) fn settings_inputs(&self) -> (HashSet<String>, HashSet<String>) {
        let mut vars = HashSet::new();
        let mut locals = HashSet::new();
        let mut todo: Vec<&crate::config::decode::RawAttr> = Vec::new();
        for b in self
            .blocks
            .iter()
            .filter(|b| b.kind == "state" || b.kind == "platform")
        {
            todo.extend(b.attrs.values());
            todo.extend(b.blocks.iter().flat_map(|h| h.attrs.values()));
        }
        while let Some(a) = todo.pop() {
            for r in refs::scan(a.expr_span.file, &a.expr).refs {
                let Some(name) = r.name else { continue };
                match r.root.as_str() {
                    "local" if !locals.contains(&name) => {
                        if let Some((bi, an)) = self.decl.locals.get(&name) {
                            todo.push(&self.blocks[*bi].attrs[an]);
                        }
                        locals.insert(name);
                    }
                    "var" if !vars.contains(&name) => {
                        if let Some(bi) = self.decl.of("variable").and_then(|m| m.get(&name)) {
                            todo.extend(
                                self.blocks[*bi]
                                    .blocks_of("validation")
                                    .flat_map(|v| v.attrs.values()),
                            );
                        }
                        vars.insert(name);
                    }
                    _ => {}
                }
            }
        }
        (vars, locals)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::{check, options};
    use crate::config::parse::parse_texts;

    /// `Parsed::settings` of `src`, as the state backend and the platforms.
    fn settings(src: &str) -> String {
        let parsed = match parse_texts(&options(), &[("main.tg.hcl", src)]) {
            Ok(p) => p,
            Err(e) => return e.diagnostics.0[0].summary.clone(),
        };
        match parsed.settings() {
            Ok(s) => format!(
                "{:?} {}",
                s.state,
                serde_json::to_string(&s.platforms).unwrap()
            ),
            Err(e) => e
                .diagnostics
                .iter()
                .map(|d| d.summary.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    #[test]
    fn state_and_platforms() {
        assert_eq!(settings("network \"lab\" {}\n"), "Sqlite []");
        assert_eq!(
            settings("variable \"u\" {\n  default = \"postgres://x\"\n}\nlocals {\n  url = var.u\n}\nstate {\n  backend = \"postgres\"\n  url     = local.url\n}\n"),
            "Postgres { url: \"postgres://x\" } []"
        );
        assert_eq!(
            settings("state {\n  backend = \"postgres\"\n  url     = env(\"TG_TEST\")\n}\n"),
            "Postgres { url: \"from-env\" } []"
        );
        assert_eq!(
            settings("profile \"p\" {\n  image = \"host\"\n}\nplatform \"ssh\" \"pool\" {\n  user = \"root\"\n  host \"h1\" {\n    address = \"192.0.2.10\"\n    port    = 2222\n    profile = \"p\"\n    image   = \"debian:bookworm\"\n    labels  = { rack = \"a\" }\n    cpus    = 4\n    memory  = \"8GiB\"\n  }\n}\n"),
            r#"Sqlite [{"driver":"ssh","name":"pool","attributes":{"user":"root"},"hosts":[{"name":"h1","address":"192.0.2.10","port":2222,"user":null,"profile":"p","image":"debian:bookworm","labels":{"rack":"a"},"cpus":4.0,"memory_mib":8192}]}]"#
        );
        assert_eq!(
            settings("platform \"docker\" \"x\" {}\n"),
            "unknown platform kind `docker`"
        );
        assert_eq!(
            settings("platform \"ssh\" \"x\" {\n  host \"h\" {\n    address = \"a\"\n    port    = 70000\n    profile = \"nope\"\n  }\n}\n"),
            "`port` must be a port number from 1 to 65535, found number 70000\nunknown profile `nope`"
        );
    }

    #[test]
    fn settings_evaluate_only_what_they_need() {
        // The node's error is not the settings' business...
        let src = "variable \"n\" {}\nnetwork \"lab\" {}\nnode \"a\" {\n  count = var.n\n  image = \"host\"\n}\nstate {\n  path = \"s.db\"\n}\n";
        assert_eq!(settings(src), "SqlitePath(\"s.db\") []");
        // ... but the whole evaluation's.
        check(src, "1:1: error: variable `n` has no value");
        // Structure errors anywhere are.
        assert_eq!(
            settings("node \"a\" {\n  imgae = \"host\"\n}\n"),
            "unknown attribute `imgae` in a `node` block"
        );
    }

    #[test]
    fn the_testbed_block() {
        check("testbed {\n  name = \"bed\"\n  description = 3\n}\n", "ok");
    }
}
