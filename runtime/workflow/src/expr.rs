//! Paths, conditions and transforms over JSON values, as blueprints write them.
//!
//! - A path is `$` (the whole value) followed by `.key` and `[index]` steps: `$.items[0].sku`.
//!   Keys are any characters except whitespace, `.`, `[`, `]`, `=`, `!`, `<` and `>`.
//! - A condition is `<path> <op> <json>` with `==`, `!=`, `>`, `>=`, `<`, `<=`, or
//!   `<path> exists`, or `!<path> exists`.
//! - A transform is a JSON value whose strings starting with `$` are paths.

use std::cmp::Ordering;

use serde_json::Value;

/// Why an expression is invalid.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct ExprError(pub String);

/// One step of a path.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Characters that end a key (and the path token of a condition).
fn ends_key(c: char) -> bool {
    c.is_whitespace() || matches!(c, '.' | '[' | ']' | '=' | '!' | '<' | '>')
}

fn parse_path(text: &str) -> Result<Vec<Step<'_>>, ExprError> {
    let err = |why: &str| ExprError(format!("path {text:?}: {why}"));
    let mut rest = text.strip_prefix('$').ok_or_else(|| err("must start with `$`"))?;
    let mut steps = Vec::new();
    while let Some(c) = rest.chars().next() {
        match c {
            '.' => {
                let key_len = rest[1..].find(ends_key).unwrap_or(rest.len() - 1);
                if key_len == 0 {
                    return Err(err("empty key after `.`"));
                }
                steps.push(Step::Key(&rest[1..=key_len]));
                rest = &rest[1 + key_len..];
            }
            '[' => {
                let (index, after) = rest[1..].split_once(']').ok_or_else(|| err("`[` without `]`"))?;
                let i = index.parse().map_err(|_| err(&format!("index {index:?} is not a non-negative integer")))?;
                steps.push(Step::Index(i));
                rest = after;
            }
            other => return Err(err(&format!("unexpected {other:?}: expected `.key` or `[index]`"))),
        }
    }
    Ok(steps)
}

fn resolve<'a>(value: &'a Value, steps: &[Step<'_>]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |cur, step| match step {
        Step::Key(k) => cur.get(k),
        Step::Index(i) => cur.get(i),
    })
}

/// The value at `path` (`$`, `$.a.b`, `$.items[0].sku`) in `value`; None when absent or when
/// the path is invalid.
pub fn path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    resolve(value, &parse_path(path).ok()?)
}

/// Whether `p` is a valid path.
pub fn check_path(p: &str) -> Result<(), ExprError> {
    parse_path(p).map(drop)
}

/// `template` with every string starting with `$` replaced by that path in `value` (null when
/// absent).
pub fn transform(template: &Value, value: &Value) -> Value {
    match template {
        Value::String(s) if s.starts_with('$') => path(value, s).cloned().unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(a.iter().map(|t| transform(t, value)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, t)| (k.clone(), transform(t, value))).collect()),
        other => other.clone(),
    }
}

/// Whether every `$` string in `template` is a valid path.
pub fn check_transform(template: &Value) -> Result<(), ExprError> {
    match template {
        Value::String(s) if s.starts_with('$') => check_path(s),
        Value::Array(a) => a.iter().try_for_each(check_transform),
        Value::Object(o) => o.values().try_for_each(check_transform),
        _ => Ok(()),
    }
}

/// Splits an `inputs` reference, `<source>` or `<source><steps>` (`input.order.id`,
/// `charge.receipt`, `lines[0]`), into the source (`input` or a node id) and a path
/// (`$.order.id`, `$`, `$[0]`).
pub fn split_reference(reference: &str) -> Result<(&str, String), ExprError> {
    let at = reference.find(['.', '[']).unwrap_or(reference.len());
    let (source, steps) = reference.split_at(at);
    if source.is_empty() {
        return Err(ExprError(format!("reference {reference:?}: expected `<source>` or `<source>.<path>`")));
    }
    let p = format!("${steps}");
    parse_path(&p).map_err(|e| ExprError(format!("reference {reference:?}: {e}")))?;
    Ok((source, p))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed condition.
#[derive(Debug, PartialEq)]
enum Condition<'a> {
    /// `<path> exists` (`negated`: `!<path> exists`).
    Exists { path: Vec<Step<'a>>, negated: bool },
    /// `<path> <op> <json>`.
    Compare { path: Vec<Step<'a>>, op: Op, right: Value },
}

fn parse_condition(text: &str) -> Result<Condition<'_>, ExprError> {
    let err = |why: String| ExprError(format!("condition {text:?}: {why}"));
    let c = text.trim();
    let (negated, c) = match c.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, c),
    };
    // The path runs up to whitespace or an operator character.
    let path_len = c.find(|ch: char| ch.is_whitespace() || matches!(ch, '=' | '!' | '<' | '>')).unwrap_or(c.len());
    let (path_text, rest) = c.split_at(path_len);
    let path = parse_path(path_text).map_err(|e| err(e.0))?;
    let rest = rest.trim_start();
    if rest.trim_end() == "exists" {
        return Ok(Condition::Exists { path, negated });
    }
    if negated {
        return Err(err("`!` only goes with `exists`: write `!<path> exists`".into()));
    }
    let ops = [("==", Op::Eq), ("!=", Op::Ne), (">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt)];
    let Some((op, right)) = ops.iter().find_map(|(s, op)| rest.strip_prefix(s).map(|r| (*op, r))) else {
        let hint = if rest.starts_with('=') { " (use `==`)" } else { "" };
        return Err(err(format!(
            "expected `==`, `!=`, `>`, `>=`, `<`, `<=` or `exists` after the path, found {rest:?}{hint}"
        )));
    };
    let right = serde_json::from_str(right.trim()).map_err(|e| err(format!("the right side is not JSON ({e})")))?;
    Ok(Condition::Compare { path, op, right })
}

/// Whether `c` is a valid condition.
pub fn check_condition(c: &str) -> Result<(), ExprError> {
    parse_condition(c).map(drop)
}

/// Whether `condition` holds on `value`. A missing path compares as null; numbers compare by
/// value (`1 == 1.0`), strings in byte order; `>` and friends are false for anything else.
pub fn condition(condition: &str, value: &Value) -> Result<bool, ExprError> {
    Ok(match parse_condition(condition)? {
        Condition::Exists { path, negated } => resolve(value, &path).is_some_and(|v| !v.is_null()) != negated,
        Condition::Compare { path, op, right } => {
            let left = resolve(value, &path).unwrap_or(&Value::Null);
            let order = match (left, &right) {
                (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
                (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                _ => None,
            };
            let equal = order.map_or(*left == right, Ordering::is_eq);
            match op {
                Op::Eq => equal,
                Op::Ne => !equal,
                Op::Gt => order.is_some_and(Ordering::is_gt),
                Op::Ge => order.is_some_and(Ordering::is_ge),
                Op::Lt => order.is_some_and(Ordering::is_lt),
                Op::Le => order.is_some_and(Ordering::is_le),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"total": 120, "items": [{"sku": "a"}, {"sku": "b"}], "grid": [[1, 2], [3, 4]],
               "status": "ok", "s": "a>b", "none": null, "my-key": 7})
    }

    #[test]
    fn paths_walk_keys_and_indexes() {
        let v = doc();
        assert_eq!(path(&v, "$"), Some(&v));
        assert_eq!(path(&v, "$.items[1].sku"), Some(&json!("b")));
        assert_eq!(path(&v, "$.grid[1][0]"), Some(&json!(3)));
        assert_eq!(path(&v, "$.my-key"), Some(&json!(7)));
        assert_eq!(path(&json!([5, 6]), "$[1]"), Some(&json!(6)));
        assert_eq!(path(&v, "$.items[9]"), None);
        assert_eq!(path(&v, "$.total.x"), None);
        assert_eq!(path(&v, "$.items.0"), None, "arrays take [index], not .index");
        assert_eq!(path(&v, "total"), None);
    }

    #[test]
    fn path_syntax_errors_say_why() {
        for (p, why) in [
            ("total", "must start with `$`"),
            ("$.", "empty key after `.`"),
            ("$.a..b", "empty key after `.`"),
            ("$.a[", "`[` without `]`"),
            ("$.a[x]", "index \"x\" is not a non-negative integer"),
            ("$.a[-1]", "index \"-1\" is not a non-negative integer"),
            ("$a", "unexpected 'a'"),
            ("$.a b", "unexpected ' '"),
        ] {
            let e = check_path(p).expect_err(p);
            assert!(e.0.contains(why), "{p}: {e}");
        }
        check_path("$.a[0][1].b").expect("valid");
    }

    #[test]
    fn comparisons() {
        let v = doc();
        let yes = |c: &str| assert_eq!(condition(c, &v), Ok(true), "{c}");
        let no = |c: &str| assert_eq!(condition(c, &v), Ok(false), "{c}");
        yes("$.total > 100");
        yes("$.total >= 120");
        no("$.total > 120");
        yes("$.total>=120");
        yes("$.total <= 120.0");
        no("$.total < 120");
        yes("$.total == 120.0");
        yes("$.total != 121");
        yes("$.status == \"ok\"");
        yes("$.status < \"ol~\"");
        yes("$.s == \"a>b\"");
        yes("$.s==\"a>b\"");
        no("$.s == \"a=b\"");
        yes("$.items[0] == {\"sku\": \"a\"}");
        yes("$.missing == null");
        no("$.status > 1");
        no("$.missing > 1");
    }

    #[test]
    fn existence() {
        let v = doc();
        assert_eq!(condition("$.status exists", &v), Ok(true));
        assert_eq!(condition("$.missing exists", &v), Ok(false));
        assert_eq!(condition("$.none exists", &v), Ok(false), "null does not exist");
        assert_eq!(condition("!$.missing exists", &v), Ok(true));
        assert_eq!(condition("  !$.status exists ", &v), Ok(false));
    }

    #[test]
    fn condition_syntax_errors_say_why() {
        for (c, why) in [
            ("$.total >", "the right side is not JSON"),
            ("$.total > abc", "the right side is not JSON"),
            ("$.total = 1", "(use `==`)"),
            ("$.total", "expected `==`"),
            ("$.total is 1", "expected `==`"),
            ("!$.total == 1", "`!` only goes with `exists`"),
            ("total == 1", "must start with `$`"),
            ("$. == 1", "empty key"),
        ] {
            let e = check_condition(c).expect_err(c);
            assert!(e.0.contains(why), "{c}: {e}");
            assert_eq!(condition(c, &doc()), Err(e));
        }
    }

    #[test]
    fn transforms_and_their_syntax() {
        let v = doc();
        let t = json!({"amount": "$.total", "first": ["$.items[0].sku", "$.nope"], "fixed": 1, "text": "x$"});
        assert_eq!(transform(&t, &v), json!({"amount": 120, "first": ["a", null], "fixed": 1, "text": "x$"}));
        assert_eq!(transform(&json!("$"), &v), v);
        check_transform(&t).expect("valid");
        let e = check_transform(&json!({"a": ["$.ok", "$.bad["]})).expect_err("invalid");
        assert!(e.0.contains("\"$.bad[\""), "{e}");
    }

    #[test]
    fn references() {
        assert_eq!(split_reference("input"), Ok(("input", "$".to_string())));
        assert_eq!(split_reference("input.order.id"), Ok(("input", "$.order.id".to_string())));
        assert_eq!(split_reference("lines[0].sku"), Ok(("lines", "$[0].sku".to_string())));
        assert!(split_reference(".a").is_err());
        assert!(split_reference("charge.").is_err());
    }
}
