//! Expressions: evaluating one attribute with what it may see (hcl-rs with
//! tg's functions), typed readers (`string`, `bool`, `labels`, `cpus`,
//! `memory`) and the mapping of hcl-rs errors to diagnostics. Does not
//! decide evaluation order (the stages do).

use super::size::{measure, Size};
use super::*;

impl Evaluator<'_> {
    /// The rewrites every expression gets before it is evaluated (the
    /// console's too): checked arithmetic, host functions bound to this
    /// evaluation, and fuel against runaway loops. Returns the expression,
    /// whether it is fueled, whether it calls host functions, and the tank
    /// to keep while it evaluates.
    pub(super) fn prepare(
        &self,
        mut expr: hcl_edit::expr::Expression,
        found: &refs::ExprRefs,
    ) -> (
        hcl_edit::expr::Expression,
        bool,
        bool,
        Option<crate::config::fuel::Tank>,
    ) {
        if found.arith {
            checked::rewrite(&mut expr);
        }
        let host = found
            .calls
            .iter()
            .any(|c| functions::HOST_FUNCTIONS.contains(&c.name.as_str()));
        if host {
            functions::bind_host(&mut expr);
        }
        let fueled = crate::config::fuel::rewrite(&mut expr);
        let tank = fueled.then(|| {
            crate::config::fuel::Tank::fill(self.opts.limits.max_value_elements as u64 * 4)
        });
        (expr, fueled, host, tank)
    }

    /// Evaluate one attribute with what it may see; errors become diagnostics.
    pub(super) fn eval(&mut self, a: &RawAttr, rep: &Repetition) -> Option<Value> {
        self.eval_sized(a, rep).map(|(v, _)| v)
    }

    /// [`Self::eval`], with the value's size (checked against the limits).
    pub(super) fn eval_sized(&mut self, a: &RawAttr, rep: &Repetition) -> Option<(Value, Size)> {
        // Fast paths for what most attributes are: literals and `network.NAME`.
        if let Some(v) = literal_value(&a.expr) {
            return self.bounded(a, v);
        }
        if let Some(v) = self.simple_network_ref(&a.expr) {
            return self.bounded(a, v);
        }
        let found = refs::scan(a.expr_span.file, &a.expr);
        if found.refs.iter().any(|r| {
            r.name
                .as_ref()
                .is_some_and(|n| self.is_poisoned(&r.root, n))
        }) {
            self.silenced = true;
            return None;
        }
        if !found.arith && found.calls.is_empty() {
            if let Some((v, size)) = self.eval_structural(&a.expr, rep) {
                return match size.over(&self.opts.limits) {
                    None => Some((v, size)),
                    Some(what) => {
                        self.too_large(a, &what);
                        None
                    }
                };
            }
        }
        let (mut edit_expr, fueled, host, _tank) = self.prepare(a.expr.clone(), &found);
        if found.is_static() && !found.arith && !fueled {
            let expr = hcl::Expression::from(edit_expr);
            return match expr.evaluate(&hcl::eval::Context::new()) {
                Ok(v) => self.bounded(a, v),
                Err(e) => {
                    self.err(eval_error(a, &e, self.is_sensitive(&a.expr)));
                    None
                }
            };
        }
        let resolved = super::resolve::resolve(self, &mut edit_expr, rep);
        let expr = hcl::Expression::from(edit_expr);
        let mut ctx = hcl::eval::Context::new();
        for (name, v) in resolved.decls {
            ctx.declare_var(name, v);
        }
        // What could not be resolved is declared as hcl-rs would see it
        // (and then fails there with its own message).
        for root in &resolved.unresolved {
            let m = match root.as_str() {
                "var" => self.var_values.clone(),
                "local" => self.local_values.clone(),
                "network" => self.referenced_values(&found.refs, "network", Self::network_value),
                "node" => self.referenced_values(&found.refs, "node", Self::node_value),
                _ => self.package_values.clone(),
            };
            ctx.declare_var(root.as_str(), Value::Object(m));
        }
        if let Some(i) = rep.count {
            let mut m = hcl::Map::new();
            m.insert("index".to_string(), Value::from(i));
            ctx.declare_var("count", Value::Object(m));
        }
        if let Some((k, v)) = &rep.each {
            let mut m = hcl::Map::new();
            m.insert("key".to_string(), k.clone());
            m.insert("value".to_string(), v.clone());
            ctx.declare_var("each", Value::Object(m));
        }
        functions::declare_some(&mut ctx, found.calls.iter().map(|c| c.name.as_str()));
        if found.arith {
            checked::declare(&mut ctx);
        }
        if fueled {
            crate::config::fuel::declare(&mut ctx);
        }
        if host {
            ctx.declare_var(functions::HOST_VAR, self.host.clone());
        }
        match expr.evaluate(&ctx) {
            Ok(v) => self.bounded(a, v),
            Err(e) => {
                self.err(eval_error(a, &e, self.is_sensitive(&a.expr)));
                None
            }
        }
    }

    /// `v` with its size, or an error at `a` when it is larger than the
    /// limits allow.
    pub(super) fn bounded(&mut self, a: &RawAttr, v: Value) -> Option<(Value, Size)> {
        match measure(&v, &self.opts.limits) {
            Ok(size) => Some((v, size)),
            Err(what) => {
                self.too_large(a, &what);
                None
            }
        }
    }

    fn too_large(&mut self, a: &RawAttr, what: &str) {
        let limits = &self.opts.limits;
        self.err(
            Diagnostic::error(format!(
                "the value of `{}` is too large: it holds {what}",
                a.name
            ))
            .at(a.expr_span.clone())
            .help(format!(
                "one value may hold at most {} list elements and map entries, {} MiB of strings and {} levels of nesting; look for a value that grows at each step, such as `b = [local.a, local.a]`",
                limits.max_value_elements,
                limits.max_value_bytes >> 20,
                super::size::MAX_DEPTH
            )),
        );
    }

    /// `v` described for a message about attribute `a`: not at all when
    /// it is sensitive.
    pub(super) fn describe_in(&self, a: &RawAttr, v: &Value) -> String {
        if self.is_sensitive(&a.expr) {
            "a sensitive value".to_string()
        } else {
            types::describe(v)
        }
    }

    /// The values of the resources of one kind that `refs` name, keyed by name.
    pub(super) fn referenced_values(
        &self,
        refs: &[Reference],
        root: &str,
        value: fn(&Self, &str) -> Option<Value>,
    ) -> hcl::Map<String, Value> {
        let mut m = hcl::Map::new();
        for name in refs
            .iter()
            .filter(|r| r.root == root)
            .filter_map(|r| r.name.as_ref())
        {
            if !m.contains_key(name) {
                if let Some(v) = value(self, name) {
                    m.insert(name.clone(), v);
                }
            }
        }
        m
    }

    /// `network.NAME` of a network without count/for_each.
    pub(super) fn simple_network_ref(&self, e: &hcl_edit::expr::Expression) -> Option<Value> {
        use hcl_edit::expr::{Expression as E, TraversalOperator as Op};
        let E::Traversal(t) = e else { return None };
        let E::Variable(root) = &t.expr else {
            return None;
        };
        if root.as_str() != "network" || t.operators.len() != 1 {
            return None;
        }
        let Op::GetAttr(name) = t.operators[0].value() else {
            return None;
        };
        if self.is_poisoned("network", name.as_str()) {
            return None;
        }
        match self
            .expansions
            .get(&(ResourceKind::Network, name.as_str().to_string()))?
        {
            Expansion::Single => self.network_value(name.as_str()),
            _ => None,
        }
    }

    pub(super) fn eval_typed<T>(
        &mut self,
        a: &RawAttr,
        rep: &Repetition,
        want: &str,
        f: impl FnOnce(&Value) -> Option<T>,
    ) -> Option<T> {
        let v = self.eval(a, rep)?;
        match f(&v) {
            Some(t) => Some(t),
            None => {
                let name = &a.name;
                let help = match want {
                    "true or false" => format!("write `{name} = true` or `{name} = false`"),
                    _ => format!("write `{name} = \"...\"`"),
                };
                self.err(
                    Diagnostic::error(format!(
                        "`{name}` must be {want}, found {}",
                        self.describe_in(a, &v)
                    ))
                    .at(a.expr_span.clone())
                    .help(help),
                );
                None
            }
        }
    }

    pub(super) fn eval_string(
        &mut self,
        b: &RawBlock,
        name: &str,
        rep: &Repetition,
    ) -> Option<String> {
        let a = b.attr(name)?;
        self.eval_typed(a, rep, "a string", |v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }

    pub(super) fn eval_bool(&mut self, b: &RawBlock, name: &str, rep: &Repetition) -> Option<bool> {
        let a = b.attr(name)?;
        let v = self.eval_typed(a, rep, "true or false", |v| v.as_bool());
        if v.is_none() {
            if let Some(d) = self.diags.0.last_mut() {
                if d.help.is_none() && d.span.as_ref() == Some(&a.expr_span) {
                    d.help = Some(format!(
                        "write `{name} = true` or `{name} = false`, without quotes"
                    ));
                }
            }
        }
        v
    }

    pub(super) fn eval_labels(
        &mut self,
        b: &RawBlock,
        rep: &Repetition,
    ) -> Option<BTreeMap<String, String>> {
        let a = b.attr("labels")?;
        let v = self.eval(a, rep)?;
        let Value::Object(o) = v else {
            self.err(
                Diagnostic::error(format!(
                    "`labels` must be a map of strings, found {}",
                    self.describe_in(a, &v)
                ))
                .at(a.expr_span.clone())
                .help("write `labels = { role = \"edge\" }`"),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in o {
            let s = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    self.err(
                        Diagnostic::error(format!(
                            "label `{k}` must be a string, found {}",
                            self.describe_in(a, &other)
                        ))
                        .at(a.expr_span.clone()),
                    );
                    return None;
                }
            };
            if k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
            {
                self.err(
                    Diagnostic::error(format!("invalid label key `{k}`"))
                        .at(a.expr_span.clone())
                        .help("label keys become Ansible group names: use letters, digits, `_`, `-`, `.`, `/`"),
                );
                return None;
            }
            out.insert(k, s);
        }
        Some(out)
    }

    pub(super) fn eval_cpus(&mut self, b: &RawBlock, rep: &Repetition) -> Option<f64> {
        let a = b.attr("cpus")?;
        let v = self.eval(a, rep)?;
        match v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(c) if c > 0.0 && c <= 4096.0 => Some(c),
            _ => {
                self.err(
                    Diagnostic::error(format!(
                        "`cpus` must be a positive number, found {}",
                        self.describe_in(a, &v)
                    ))
                    .at(a.expr_span.clone())
                    .help("write `cpus = 1` or `cpus = 0.5`"),
                );
                None
            }
        }
    }

    /// `pids = N`: a positive whole number of processes.
    pub(super) fn eval_pids(&mut self, b: &RawBlock, rep: &Repetition) -> Option<u64> {
        let a = b.attr("pids")?;
        let v = self.eval(a, rep)?;
        match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.err(
                    Diagnostic::error(format!(
                        "`pids` must be a positive whole number, found {}",
                        self.describe_in(a, &v)
                    ))
                    .at(a.expr_span.clone())
                    .help("write `pids = 256` (the most processes and threads of the node)"),
                );
                None
            }
        }
    }

    pub(super) fn eval_memory(&mut self, b: &RawBlock, rep: &Repetition) -> Option<u64> {
        let a = b.attr("memory")?;
        let v = self.eval(a, rep)?;
        let parsed = match &v {
            Value::Number(n) => n.as_u64().filter(|m| *m > 0),
            Value::String(s) => parse_memory(s),
            _ => None,
        };
        if parsed.is_none() {
            self.err(
                Diagnostic::error(format!(
                    "`memory` must be a size such as \"512MiB\" or \"2GiB\", found {}",
                    self.describe_in(a, &v)
                ))
                .at(a.expr_span.clone())
                .help("units: KiB, MiB, GiB, TiB (also K, M, G, T); a bare number means MiB"),
            );
        }
        parsed
    }
}

/// Parse `512MiB`, `2GiB`, `1G`, `512` (MiB) into MiB, rounding up.
pub fn parse_memory(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let bytes_per: f64 = match unit.trim() {
        "" | "MiB" | "M" | "Mi" => 1024.0 * 1024.0,
        "KiB" | "K" | "Ki" => 1024.0,
        "GiB" | "G" | "Gi" => 1024.0 * 1024.0 * 1024.0,
        "TiB" | "T" | "Ti" => 1024.0_f64.powi(4),
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "B" => 1.0,
        _ => return None,
    };
    let mib = (n * bytes_per / (1024.0 * 1024.0)).ceil();
    (1.0..1e12).contains(&mib).then_some(mib as u64)
}

/// The value of a literal expression (strings, numbers, bools, null, and
/// lists and maps of them) without going through the evaluator.
pub(super) fn literal_value(e: &hcl_edit::expr::Expression) -> Option<Value> {
    use hcl_edit::expr::{Expression as E, ObjectKey};
    Some(match e {
        E::Null(_) => Value::Null,
        E::Bool(b) => Value::Bool(*b.value()),
        E::Number(n) => Value::Number(*n.value()),
        E::String(s) => Value::String(s.value().clone()),
        E::Array(a) => Value::Array(a.iter().map(literal_value).collect::<Option<Vec<_>>>()?),
        E::Object(o) => {
            let mut m = hcl::Map::new();
            for (k, v) in o.iter() {
                let key = match k {
                    ObjectKey::Ident(i) => i.as_str().to_string(),
                    ObjectKey::Expression(E::String(s)) => s.value().clone(),
                    ObjectKey::Expression(E::Variable(i)) => i.as_str().to_string(),
                    _ => return None,
                };
                if m.insert(key, literal_value(v.expr())?).is_some() {
                    return None; // duplicate keys: let the evaluator report it
                }
            }
            Value::Object(m)
        }
        _ => return None,
    })
}

/// hcl values to JSON.
pub fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Map an hcl-rs evaluation error to a diagnostic at the attribute.
/// `sensitive`: the expression reads a sensitive value, so the message
/// quotes no value (and no function's own message, which might).
pub(super) fn eval_error(a: &RawAttr, e: &hcl::eval::Error, sensitive: bool) -> Diagnostic {
    use hcl::eval::ErrorKind;
    let describe = |v: &Value| {
        if sensitive {
            "a sensitive value".to_string()
        } else {
            types::describe(v)
        }
    };
    let (summary, help): (String, Option<String>) = match e.kind() {
        ErrorKind::UndefinedVar(v) => (format!("unknown reference `{v}`"), None),
        ErrorKind::UndefinedFunc(f) => (format!("unknown function `{f}`"), None),
        ErrorKind::NoSuchKey(k) => (
            format!("no key or attribute `{k}` in `{}`", a.name),
            Some(
                "check the name; a resource with `count` needs an index, such as `node.edge[0]`"
                    .into(),
            ),
        ),
        ErrorKind::Index(i) => (
            format!("index {i} is out of range"),
            Some("check the list's length".into()),
        ),
        ErrorKind::Unexpected(v, expected) => (
            format!("expected {expected}, found {}", describe(v)),
            Some(
                "a resource with `count` is a list (`node.edge[0]`), one with `for_each` a map (`node.web[\"a\"]`)"
                    .into(),
            ),
        ),
        // Checked arithmetic: its message is the whole story.
        ErrorKind::FuncCall(name, msg) if crate::config::fuel::is_internal(&name.to_string()) => (
            msg.clone(),
            Some("nested `for` expressions multiply: iterate over less, or split the work into locals (each is bounded on its own)".into()),
        ),
        ErrorKind::FuncCall(name, msg) if checked::is_internal(&name.to_string()) => {
            match msg.split_once(" cannot combine ") {
                Some((op, _)) if sensitive => (
                    format!("{op} cannot combine these values (they are sensitive: not shown)"),
                    None,
                ),
                _ => (msg.clone(), None),
            }
        }
        ErrorKind::FuncCall(name, _) if sensitive => (
            format!("in `{name}(...)`: the call failed (its arguments are sensitive, so the reason is not shown)"),
            functions::signature(&name.to_string()).map(|s| format!("usage: `{s}`")),
        ),
        ErrorKind::FuncCall(name, msg) => (
            // Arity errors end with `; usage: ...`: that goes to the help.
            format!(
                "in `{name}(...)`: {}",
                msg.split_once("; usage: ").map_or(msg.as_str(), |(m, _)| m)
            ),
            functions::signature(&name.to_string()).map(|s| format!("usage: `{s}`")),
        ),
        ErrorKind::BinaryOp(l, op, r) => (
            format!(
                "`{op}` cannot combine {} and {}",
                describe(l),
                describe(r)
            ),
            None,
        ),
        ErrorKind::UnaryOp(op, v) => (
            format!("`{op}` cannot apply to {}", describe(v)),
            None,
        ),
        ErrorKind::KeyExists(k) => (
            format!("key `{k}` is produced twice"),
            Some("use `...` grouping or unique keys".into()),
        ),
        other => (other.to_string(), None),
    };
    let mut d = Diagnostic::error(summary).at(a.expr_span.clone());
    if let Some(h) = help {
        d = d.help(h);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512MiB"), Some(512));
        assert_eq!(parse_memory("2GiB"), Some(2048));
        assert_eq!(parse_memory("1G"), Some(1024));
        assert_eq!(parse_memory("256"), Some(256));
        assert_eq!(parse_memory("1.5GiB"), Some(1536));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_memory("0"), None);
    }
}

#[cfg(test)]
mod stage_tests {
    use crate::config::eval::testing::{check, check_with, options};

    fn out(expr: &str) -> String {
        format!("output \"o\" {{\n  value = {expr}\n}}\n")
    }

    #[test]
    fn values() {
        check(&out("1 + 2 * 3"), "o = 7");
        check(&out("\"n-${1 + 1}\""), r#"o = "n-2""#);
        check(&out("[for i in range(3) : i * 2 if i != 1]"), "o = [0,4]");
        check(
            &out("{ for k, v in { a = 1 } : upper(k) => v }"),
            r#"o = {"A":1}"#,
        );
        check(&out("true ? \"y\" : \"n\""), r#"o = "y""#);
        check(&out("env(\"TG_TEST\")"), r#"o = "from-env""#);
        check(&out("env(\"PATH\", \"unset\")"), r#"o = "unset""#);
    }

    #[test]
    fn errors_point_at_the_expression() {
        check(
            &out("5 % 0"),
            "2:11: error: remainder (`%`) of a division by zero",
        );
        check(
            &out("\"a\" + 1"),
            "2:11: error: `+` cannot combine string \"a\" and number 1",
        );
        check(&out("[1][3]"), "2:11: error: index 3 is out of range");
        check(
            &out("{ a = 1 }.b"),
            "2:11: error: no key or attribute `b` in `value`",
        );
        check(&out("cidrhost(\"10.0.0.0/30\", 9)"), "2:11: error: in `cidrhost(...)`: host number 9 does not fit in 10.0.0.0/30 (4 addresses)");
        check(&out("env(\"TG_NOT_SET\")"), "2:11: error: in `env(...)`: environment variable `TG_NOT_SET` is not set; set it, or pass a default as the second argument");
        check(
            &out("file(\"/dev/null\")"),
            "2:11: error: in `file(...)`: cannot read `/dev/null`: it is not a regular file",
        );
    }

    #[test]
    fn values_are_bounded() {
        let mut opts = options();
        opts.limits.max_value_elements = 10;
        opts.limits.max_value_bytes = 64;
        check_with(&opts, &out("range(11)"), "2:11: error: the value of `value` is too large: it holds more than 10 list elements and map entries");
        check_with(&opts, &out("range(10)"), "o = [0,1,2,3,4,5,6,7,8,9]");
        check_with(
            &opts,
            &out("format(\"%065d\", 1)"),
            "2:11: error: the value of `value` is too large: it holds more than 0 MiB of strings",
        );
        // Built from locals: measured from the parts.
        check_with(
            &opts,
            "locals {\n  a = [1, 2, 3]\n  b = [local.a, local.a]\n  c = [local.b, local.b]\n}\noutput \"o\" {\n  value = length(local.c)\n}\n",
            "4:7: error: the value of `c` is too large: it holds more than 10 list elements and map entries",
        );
    }

    #[test]
    fn typed_attributes() {
        let node = |attr: &str| {
            format!("network \"lab\" {{}}\nnode \"a\" {{\n  image = \"host\"\n  {attr}\n}}\n")
        };
        check(
            &node("cpus = 0"),
            "4:10: error: `cpus` must be a positive number, found number 0",
        );
        check(&node("memory = \"lots\""), "4:12: error: `memory` must be a size such as \"512MiB\" or \"2GiB\", found string \"lots\"");
        check(
            &node("labels = [1]"),
            "4:12: error: `labels` must be a map of strings, found a list of 1 element",
        );
        check(
            &node("labels = { \"a b\" = \"x\" }"),
            "4:12: error: invalid label key `a b`",
        );
        check(
            "network \"lab\" {\n  nat = \"yes\"\n}\n",
            "2:9: error: `nat` must be true or false, found string \"yes\"",
        );
    }
}
