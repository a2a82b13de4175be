//! Variable types (`string`, `number`, `bool`, `list(T)`, `set(T)`,
//! `map(T)`, `object({...})`, `any`) and the conversions Terraform users
//! expect (`"2"` is a fine `number` when it comes from the environment).

use std::fmt;

use hcl::Value;
use hcl_edit::expr::{Expression, ObjectKey};

#[derive(Debug, Clone, PartialEq)]
pub enum VarType {
    Any,
    String,
    Number,
    Bool,
    List(Box<VarType>),
    Set(Box<VarType>),
    Map(Box<VarType>),
    Object(Vec<(String, VarType)>),
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarType::Any => f.write_str("any"),
            VarType::String => f.write_str("string"),
            VarType::Number => f.write_str("number"),
            VarType::Bool => f.write_str("bool"),
            VarType::List(t) => write!(f, "list({t})"),
            VarType::Set(t) => write!(f, "set({t})"),
            VarType::Map(t) => write!(f, "map({t})"),
            VarType::Object(fields) => {
                f.write_str("object({")?;
                for (i, (k, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {t}")?;
                }
                f.write_str("})")
            }
        }
    }
}

const TYPE_HELP: &str =
    "types are string, number, bool, any, list(T), set(T), map(T) and object({ name = T })";

/// Parse a `type = ...` expression.
pub fn parse_type(e: &Expression) -> Result<VarType, String> {
    match e {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(VarType::String),
            "number" => Ok(VarType::Number),
            "bool" => Ok(VarType::Bool),
            "any" => Ok(VarType::Any),
            "list" | "set" | "map" => Ok(match v.as_str() {
                "list" => VarType::List(Box::new(VarType::Any)),
                "set" => VarType::Set(Box::new(VarType::Any)),
                _ => VarType::Map(Box::new(VarType::Any)),
            }),
            other => Err(format!("unknown type `{other}`: {TYPE_HELP}")),
        },
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let args: Vec<&Expression> = call.args.iter().collect();
            if args.len() != 1 {
                return Err(format!("`{name}(...)` takes one type argument"));
            }
            match name {
                "list" => Ok(VarType::List(Box::new(parse_type(args[0])?))),
                "set" => Ok(VarType::Set(Box::new(parse_type(args[0])?))),
                "map" => Ok(VarType::Map(Box::new(parse_type(args[0])?))),
                "object" => {
                    let Expression::Object(o) = args[0] else {
                        return Err("`object(...)` takes `{ name = type, ... }`".into());
                    };
                    let mut fields = Vec::new();
                    for (k, v) in o.iter() {
                        let key = match k {
                            ObjectKey::Ident(i) => i.as_str().to_string(),
                            ObjectKey::Expression(Expression::Variable(i)) => {
                                i.as_str().to_string()
                            }
                            ObjectKey::Expression(Expression::String(s)) => s.as_str().to_string(),
                            _ => return Err("object type keys must be names".into()),
                        };
                        fields.push((key, parse_type(v.expr())?));
                    }
                    Ok(VarType::Object(fields))
                }
                other => Err(format!("unknown type constructor `{other}`: {TYPE_HELP}")),
            }
        }
        Expression::String(s) => Err(format!(
            "a type is written without quotes: `type = {}`",
            s.as_str()
        )),
        _ => Err(format!("not a type: {TYPE_HELP}")),
    }
}

/// A short description of a value for messages: `string "abc"`, `number 3`.
pub fn describe(v: &Value) -> String {
    let shown = |s: String| {
        if s.chars().count() > 40 {
            format!("{}…", s.chars().take(40).collect::<String>())
        } else {
            s
        }
    };
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => shown(format!("string {s:?}")),
        Value::Array(a) if a.len() == 1 => "a list of 1 element".into(),
        Value::Array(a) => format!("a list of {} elements", a.len()),
        Value::Object(o) if o.len() == 1 => "an object with 1 key".into(),
        Value::Object(o) => format!("an object with {} keys", o.len()),
    }
}

/// Convert `v` to `ty`, or say why it does not fit.
pub fn convert(v: Value, ty: &VarType) -> Result<Value, String> {
    match (ty, v) {
        (VarType::Any, v) => Ok(v),
        (_, Value::Null) => Ok(Value::Null),
        (VarType::String, Value::String(s)) => Ok(Value::String(s)),
        (VarType::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (VarType::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        (VarType::Number, Value::Number(n)) => Ok(Value::Number(n)),
        (VarType::Number, Value::String(s)) => {
            parse_number(s.trim()).ok_or_else(|| format!("expected a number, found string {s:?}"))
        }
        (VarType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (VarType::Bool, Value::String(s)) => match s.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected a bool, found string {s:?}")),
        },
        (VarType::List(t), Value::Array(a)) => a
            .into_iter()
            .enumerate()
            .map(|(i, x)| convert(x, t).map_err(|e| format!("element {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (VarType::Set(t), Value::Array(a)) => {
            let mut out: Vec<Value> = Vec::new();
            for (i, x) in a.into_iter().enumerate() {
                let x = convert(x, t).map_err(|e| format!("element {i}: {e}"))?;
                if !out.contains(&x) {
                    out.push(x);
                }
            }
            Ok(Value::Array(out))
        }
        (VarType::Map(t), Value::Object(o)) => {
            let mut out = hcl::Map::new();
            for (k, x) in o {
                let x = convert(x, t).map_err(|e| format!("key {k:?}: {e}"))?;
                out.insert(k, x);
            }
            Ok(Value::Object(out))
        }
        (VarType::Object(fields), Value::Object(mut o)) => {
            let mut out = hcl::Map::new();
            for (k, t) in fields {
                let x = o.shift_remove(k).unwrap_or(Value::Null);
                let x = convert(x, t).map_err(|e| format!("attribute `{k}`: {e}"))?;
                out.insert(k.clone(), x);
            }
            if let Some(extra) = o.keys().next() {
                return Err(format!("unexpected attribute `{extra}` for type {ty}"));
            }
            Ok(Value::Object(out))
        }
        (ty, v) => Err(format!("expected {ty}, found {}", describe(&v))),
    }
}

/// Parse a number the way HCL writes them.
pub fn parse_number(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f = s.parse::<f64>().ok().filter(|f| f.is_finite())?;
    hcl::Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> VarType {
        parse_type(&hcl_edit::parser::parse_expr(s).unwrap()).unwrap()
    }

    #[test]
    fn types_parse_and_print() {
        for s in [
            "string",
            "number",
            "bool",
            "any",
            "list(string)",
            "map(number)",
            "set(string)",
        ] {
            assert_eq!(ty(s).to_string(), s);
        }
        assert_eq!(
            ty("object({a = string, b = list(number)})").to_string(),
            "object({a = string, b = list(number)})"
        );
        assert!(parse_type(&hcl_edit::parser::parse_expr("strin").unwrap()).is_err());
        assert!(parse_type(&hcl_edit::parser::parse_expr("\"string\"").unwrap()).is_err());
    }

    #[test]
    fn conversions() {
        assert_eq!(
            convert(Value::from("2"), &VarType::Number).unwrap(),
            Value::from(2)
        );
        assert!(convert(Value::from("x"), &VarType::Number).is_err());
        assert_eq!(
            convert(Value::from(true), &VarType::String).unwrap(),
            Value::from("true")
        );
        assert!(convert(Value::from(1), &VarType::List(Box::new(VarType::Any))).is_err());
    }
}
