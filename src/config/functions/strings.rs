//! String functions: `format`, `formatlist`, `join`, `split`, `replace`,
//! `substr`, `indent`, case and trimming helpers.
//!
//! `format` implements the subset of Go's `fmt` verbs Terraform documents
//! (`%v %#v %s %q %d %b %o %x %X %e %E %f %F %g %G %t %%`) with flags
//! (`-+ 0#`), width, precision and explicit argument indexes (`%[2]s`).
//! Widths and precisions are bounded so no format string can allocate
//! without limit. Strings are counted in Unicode scalar values, not bytes.

use std::borrow::Cow;

use hcl::{Number, Value};

use super::args::{
    check_size, describe, elements, is_whole, quote, sorted_keys, to_bool, to_number, to_str, Args,
    FnResult,
};

/// The largest width or precision a format verb may ask for.
const MAX_WIDTH: usize = 10_000;

pub(super) fn upper(a: &Args<'_>) -> FnResult {
    Ok(Value::String(a.string(0)?.to_uppercase()))
}

pub(super) fn lower(a: &Args<'_>) -> FnResult {
    Ok(Value::String(a.string(0)?.to_lowercase()))
}

pub(super) fn trimspace(a: &Args<'_>) -> FnResult {
    Ok(Value::String(a.string(0)?.trim().to_string()))
}

pub(super) fn chomp(a: &Args<'_>) -> FnResult {
    let s = a.string(0)?;
    Ok(Value::String(s.trim_end_matches(['\n', '\r']).to_string()))
}

pub(super) fn trimprefix(a: &Args<'_>) -> FnResult {
    let s = a.string(0)?;
    let p = a.string(1)?;
    Ok(Value::String(
        s.strip_prefix(p.as_ref()).unwrap_or(&s).to_string(),
    ))
}

pub(super) fn trimsuffix(a: &Args<'_>) -> FnResult {
    let s = a.string(0)?;
    let p = a.string(1)?;
    Ok(Value::String(
        s.strip_suffix(p.as_ref()).unwrap_or(&s).to_string(),
    ))
}

pub(super) fn strrev(a: &Args<'_>) -> FnResult {
    Ok(Value::String(a.string(0)?.chars().rev().collect()))
}

pub(super) fn title(a: &Args<'_>) -> FnResult {
    // Like Go's strings.Title: a letter after a separator is uppercased.
    let s = a.string(0)?;
    let mut out = String::with_capacity(s.len());
    let mut after_separator = true;
    for c in s.chars() {
        if after_separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        after_separator = !(c.is_alphanumeric() || c == '_');
    }
    Ok(Value::String(out))
}

pub(super) fn indent(a: &Args<'_>) -> FnResult {
    let spaces = a.int(0)?;
    let s = a.string(1)?;
    if !(0..=MAX_WIDTH as i64).contains(&spaces) {
        return Err(format!(
            "{} must be between 0 and {MAX_WIDTH}, found {spaces}",
            a.at(0)
        ));
    }
    let spaces = usize::try_from(spaces).unwrap_or(0);
    let lines = s.bytes().filter(|b| *b == b'\n').count();
    check_size(lines.saturating_mul(spaces).saturating_add(s.len()))?;
    let pad = " ".repeat(spaces);
    Ok(Value::String(s.replace('\n', &format!("\n{pad}"))))
}

pub(super) fn startswith(a: &Args<'_>) -> FnResult {
    Ok(Value::Bool(a.string(0)?.starts_with(a.string(1)?.as_ref())))
}

pub(super) fn endswith(a: &Args<'_>) -> FnResult {
    Ok(Value::Bool(a.string(0)?.ends_with(a.string(1)?.as_ref())))
}

pub(super) fn replace(a: &Args<'_>) -> FnResult {
    let s = a.string(0)?;
    let from = a.string(1)?;
    let to = a.string(2)?;
    if to.len() > from.len() {
        let matches = if from.is_empty() {
            s.chars().count() + 1
        } else {
            s.matches(from.as_ref()).count()
        };
        check_size(
            matches
                .saturating_mul(to.len() - from.len())
                .saturating_add(s.len()),
        )?;
    }
    Ok(Value::String(s.replace(from.as_ref(), &to)))
}

pub(super) fn split(a: &Args<'_>) -> FnResult {
    let sep = a.string(0)?;
    let s = a.string(1)?;
    let parts: Vec<Value> = if sep.is_empty() {
        // Like Go's strings.Split: one element per character.
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep.as_ref())
            .map(|p| Value::String(p.to_string()))
            .collect()
    };
    Ok(Value::Array(parts))
}

pub(super) fn join(a: &Args<'_>) -> FnResult {
    let sep = a.string(0)?;
    let mut parts: Vec<Cow<'_, str>> = Vec::new();
    for i in 1..a.len() {
        let list = a.array(i)?;
        for (j, v) in list.iter().enumerate() {
            match to_str(v) {
                Some(s) => parts.push(s),
                None => {
                    return Err(format!(
                        "element {j} of {} must be a string, found {}",
                        a.at(i),
                        describe(v)
                    ))
                }
            }
        }
    }
    let total = parts
        .iter()
        .fold(0usize, |n, p| n.saturating_add(p.len()))
        .saturating_add(sep.len().saturating_mul(parts.len().saturating_sub(1)));
    check_size(total)?;
    Ok(Value::String(parts.join(sep.as_ref())))
}

pub(super) fn substr(a: &Args<'_>) -> FnResult {
    let s = a.string(0)?;
    let offset = a.int(1)?;
    let length = a.int(2)?;
    let total = s.chars().count() as i64;
    let start = if offset < 0 { total + offset } else { offset };
    if start < 0 {
        return Err(format!(
            "{} {offset} is before the start of a string of {total} characters",
            a.at(1)
        ));
    }
    if length < -1 {
        return Err(format!(
            "{} must be -1 (to the end) or a non-negative count, found {length}",
            a.at(2)
        ));
    }
    let skip = usize::try_from(start).unwrap_or(usize::MAX);
    let out: String = if length == -1 {
        s.chars().skip(skip).collect()
    } else {
        let take = usize::try_from(length).unwrap_or(usize::MAX);
        s.chars().skip(skip).take(take).collect()
    };
    Ok(Value::String(out))
}

pub(super) fn format(a: &Args<'_>) -> FnResult {
    let spec = a.string(0)?;
    format_values(&spec, a.all().get(1..).unwrap_or_default()).map(Value::String)
}

pub(super) fn formatlist(a: &Args<'_>) -> FnResult {
    let spec = a.string(0)?;
    let rest = a.all().get(1..).unwrap_or_default();
    let mut len: Option<(usize, usize)> = None;
    for (i, v) in rest.iter().enumerate() {
        if let Value::Array(list) = v {
            match len {
                None => len = Some((list.len(), i)),
                Some((n, first)) if n != list.len() => {
                    return Err(format!(
                        "argument {} is a list of {} but argument {} has {}; all list arguments must have the same length",
                        i + 2,
                        elements(list.len()),
                        first + 2,
                        elements(n)
                    ))
                }
                Some(_) => {}
            }
        }
    }
    // Without any list argument the result is a one-element list, as in Terraform.
    let n = len.map_or(1, |(n, _)| n);
    let mut out = Vec::with_capacity(n);
    let mut row = Vec::with_capacity(rest.len());
    let mut total = 0usize;
    for k in 0..n {
        row.clear();
        for v in rest {
            row.push(match v {
                Value::Array(list) => list.get(k).cloned().unwrap_or(Value::Null),
                other => other.clone(),
            });
        }
        let line = format_values(&spec, &row).map_err(|e| format!("element {k}: {e}"))?;
        total = total.saturating_add(line.len());
        check_size(total)?;
        out.push(Value::String(line));
    }
    Ok(Value::Array(out))
}

/// One parsed verb: `%[flags][[index]][width][.precision]verb`.
#[derive(Default)]
struct Verb {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
    verb: char,
    /// Byte offset of the `%` in the format string.
    offset: usize,
}

/// Render a format string with its arguments.
pub(super) fn format_values(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::with_capacity(spec.len());
    let mut chars = spec.char_indices().peekable();
    let mut next_arg = 0usize;
    let mut reordered = false;
    let mut used = vec![false; args.len()];

    while let Some((offset, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut v = Verb {
            offset,
            ..Verb::default()
        };
        // Flags.
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => v.minus = true,
                '+' => v.plus = true,
                ' ' => v.space = true,
                '0' => v.zero = true,
                '#' => v.sharp = true,
                _ => break,
            }
            chars.next();
        }
        // Explicit argument index.
        if chars.peek().is_some_and(|&(_, c)| c == '[') {
            chars.next();
            let n = digits(&mut chars).filter(|&n| n >= 1);
            match (n, chars.next()) {
                (Some(n), Some((_, ']'))) => {
                    next_arg = n - 1;
                    reordered = true;
                }
                _ => {
                    return Err(format!(
                        "invalid argument index at offset {offset}: expected `[N]` with N counting from 1"
                    ))
                }
            }
        }
        v.width = digits(&mut chars);
        if chars.peek().is_some_and(|&(_, c)| c == '.') {
            chars.next();
            v.precision = Some(digits(&mut chars).unwrap_or(0));
        }
        if v.width.unwrap_or(0) > MAX_WIDTH || v.precision.unwrap_or(0) > MAX_WIDTH {
            return Err(format!(
                "width or precision at offset {offset} is larger than {MAX_WIDTH}"
            ));
        }
        let Some((_, verb)) = chars.next() else {
            return Err(format!(
                "format string ends in the middle of a verb at offset {offset}"
            ));
        };
        v.verb = verb;
        if verb == '%' {
            out.push('%');
            continue;
        }
        if !"vsqdboxXeEfFgGt".contains(verb) {
            return Err(format!(
                "unsupported verb `%{verb}` at offset {offset}; use one of %v %s %q %d %f %t %%"
            ));
        }
        let Some(arg) = args.get(next_arg) else {
            return Err(format!(
                "not enough arguments for `%{verb}` at offset {offset}: it needs argument {} but {} given",
                next_arg + 1,
                match args.len() {
                    0 => "none was".to_string(),
                    1 => "only 1 was".to_string(),
                    n => format!("only {n} were"),
                }
            ));
        };
        used[next_arg] = true;
        next_arg += 1;
        let text = render(&v, arg)?;
        let numeric = "dboxXeEfFgG".contains(verb) || (verb == 'v' && arg.is_number());
        pad(&mut out, &v, &text, numeric);
        check_size(out.len())?;
    }

    if !reordered && next_arg < args.len() {
        return Err(match next_arg {
            0 => format!(
                "too many arguments: the format string uses none but {} were given",
                args.len()
            ),
            n => format!(
                "too many arguments: the format string uses {n} but {} were given",
                args.len()
            ),
        });
    }
    if reordered {
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(format!(
                "argument {} is not used by the format string",
                i + 2
            ));
        }
    }
    Ok(out)
}

/// A run of ASCII digits, saturating instead of overflowing.
fn digits(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(&(_, c)) = chars.peek() {
        let Some(d) = c.to_digit(10) else { break };
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
        chars.next();
    }
    n
}

/// Pad `text` to the verb's width.
fn pad(out: &mut String, v: &Verb, text: &str, numeric: bool) {
    let len = text.chars().count();
    let width = v.width.unwrap_or(0);
    if len >= width {
        out.push_str(text);
        return;
    }
    let fill = width - len;
    if v.minus {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if v.zero && numeric {
        // Zeros go after the sign and base prefix.
        let sign_len = text.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0);
        let (sign, rest) = text.split_at(sign_len);
        let (prefix, digits) = if v.sharp
            && (rest.starts_with("0x") || rest.starts_with("0X") || rest.starts_with("0b"))
        {
            rest.split_at(2)
        } else {
            ("", rest)
        };
        out.push_str(sign);
        out.push_str(prefix);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else if v.zero {
        // Like Go, `%05s` pads strings with zeros too.
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(text);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(text);
    }
}

/// Render one argument for one verb, without width padding.
fn render(v: &Verb, arg: &Value) -> Result<String, String> {
    let at = v.offset;
    let verb = v.verb;
    match verb {
        'v' => Ok(match arg {
            _ if v.sharp => json(arg),
            Value::String(s) => s.clone(),
            Value::Null => "null".to_string(),
            Value::Number(n) => sign(v, &n.to_string()),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) | Value::Object(_) => json(arg),
        }),
        's' | 'q' => {
            let s = to_str(arg).ok_or_else(|| unsupported(verb, at, arg))?;
            let s = match v.precision {
                Some(p) => s.chars().take(p).collect::<String>().into(),
                None => s,
            };
            Ok(if verb == 'q' {
                quote(&s)
            } else {
                s.into_owned()
            })
        }
        't' => to_bool(arg)
            .map(|b| b.to_string())
            .ok_or_else(|| unsupported(verb, at, arg)),
        'd' | 'b' | 'o' | 'x' | 'X' => {
            let n = to_number(arg).ok_or_else(|| unsupported(verb, at, arg))?;
            integer(v, &n)
        }
        _ => {
            let n = to_number(arg).ok_or_else(|| unsupported(verb, at, arg))?;
            let f = n.as_f64().unwrap_or(0.0);
            let p = v.precision;
            let body = match verb {
                'f' | 'F' => format!("{:.*}", p.unwrap_or(6), f.abs()),
                'e' | 'E' => go_exponent(&format!("{:.*e}", p.unwrap_or(6), f.abs()), verb == 'E'),
                _ => general(f.abs(), p, verb == 'G'),
            };
            Ok(sign(
                v,
                &if f.is_sign_negative() && f != 0.0 {
                    format!("-{body}")
                } else {
                    body
                },
            ))
        }
    }
}

fn unsupported(verb: char, at: usize, arg: &Value) -> String {
    let hint = match arg {
        Value::Array(_) | Value::Object(_) => "; use `%v` or `jsonencode` for collections",
        Value::Null => "; null cannot be formatted",
        _ => "",
    };
    format!(
        "cannot format {} with `%{verb}` at offset {at}{hint}",
        describe(arg)
    )
}

/// Add `+` or ` ` to a non-negative number as the flags ask.
fn sign(v: &Verb, body: &str) -> String {
    if body.starts_with('-') {
        body.to_string()
    } else if v.plus {
        format!("+{body}")
    } else if v.space {
        format!(" {body}")
    } else {
        body.to_string()
    }
}

/// `%d %b %o %x %X` of a whole number.
fn integer(v: &Verb, n: &Number) -> Result<String, String> {
    if !is_whole(n) {
        return Err(format!(
            "`%{}` at offset {} needs a whole number, found {n}; use `%f` or `%v` for fractions",
            v.verb, v.offset
        ));
    }
    let (negative, magnitude): (bool, Option<u64>) = match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => (false, Some(u)),
        (None, Some(i)) => (true, Some(i.unsigned_abs())),
        _ => (n.as_f64().is_some_and(|f| f < 0.0), None),
    };
    let mut digits = match (magnitude, v.verb) {
        (Some(m), 'd') => m.to_string(),
        (Some(m), 'b') => format!("{m:b}"),
        (Some(m), 'o') => format!("{m:o}"),
        (Some(m), 'x') => format!("{m:x}"),
        (Some(m), _) => format!("{m:X}"),
        // Whole numbers beyond 64 bits only arrive as floats.
        (None, 'd') => format!("{:.0}", n.as_f64().unwrap_or(0.0).abs()),
        (None, verb) => {
            return Err(format!(
                "`%{verb}` at offset {} supports numbers up to 64 bits, found {n}",
                v.offset
            ))
        }
    };
    if let Some(p) = v.precision {
        if digits.len() < p {
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        }
    }
    if v.sharp {
        let prefix = match v.verb {
            'b' => "0b",
            'o' if !digits.starts_with('0') => "0",
            'x' => "0x",
            'X' => "0X",
            _ => "",
        };
        digits = format!("{prefix}{digits}");
    }
    Ok(sign(
        v,
        &if negative {
            format!("-{digits}")
        } else {
            digits
        },
    ))
}

/// Rust writes `1.5e3`; Go (and Terraform) write `1.5e+03`.
fn go_exponent(rust: &str, upper: bool) -> String {
    let (mantissa, exp) = rust.split_once('e').unwrap_or((rust, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let e = if upper { 'E' } else { 'e' };
    if digits.len() < 2 {
        format!("{mantissa}{e}{sign}0{digits}")
    } else {
        format!("{mantissa}{e}{sign}{digits}")
    }
}

/// `%g`: the shorter of `%e` and `%f`, following Go's rules. `f` is not
/// negative.
fn general(f: f64, precision: Option<usize>, upper: bool) -> String {
    // Significant digits (trailing zeros trimmed) and the decimal exponent.
    let sci = match precision {
        None => format!("{f:e}"),
        Some(p) => format!("{:.*e}", p.max(1) - 1, f),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digs: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digs.len() > 1 && digs.ends_with('0') {
        digs.pop();
    }
    let nd = digs.len() as i64;
    let dp = exp + 1;
    let mut prec = match precision {
        None => nd,
        Some(p) => p.max(1) as i64,
    };
    let mut eprec = prec;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if precision.is_none() {
        eprec = 6;
    }
    if exp < -4 || exp >= eprec {
        if prec > nd {
            prec = nd;
        }
        let frac = usize::try_from(prec - 1).unwrap_or(0);
        let body = if frac == 0 {
            digs[..1].to_string()
        } else {
            let tail: String = digs.chars().skip(1).take(frac).collect();
            format!("{}.{tail:0<frac$}", &digs[..1])
        };
        return go_exponent(&format!("{body}e{exp}"), upper);
    }
    if prec > dp {
        prec = nd;
    }
    let decimals = usize::try_from((prec - dp).max(0)).unwrap_or(0);
    format!("{f:.decimals$}")
}

/// JSON rendering for `%v` of collections and `%#v`.
fn json(v: &Value) -> String {
    serde_json::to_string(&sorted_keys(v)).unwrap_or_else(|_| "null".to_string())
}
