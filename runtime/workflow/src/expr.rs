//! Paths, conditions and transforms over JSON values, as blueprints write them.

use serde_json::Value;

/// Why an expression is invalid.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct ExprError(pub String);

/// The value at `path` (`$`, `$.a.b`, `$.items[0].sku`) in `value`.
pub fn path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    let mut cur = value;
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, i.strip_suffix(']').and_then(|i| i.parse::<usize>().ok())),
            None => (part, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
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

/// Whether `condition` holds on `value`.
pub fn condition(condition: &str, value: &Value) -> Result<bool, ExprError> {
    let c = condition.trim();
    if let Some(p) = c.strip_suffix(" exists") {
        return Ok(path(value, p.trim()).is_some_and(|v| !v.is_null()));
    }
    for op in ["==", "!=", ">=", "<=", ">", "<"] {
        if let Some((lhs, rhs)) = c.split_once(op) {
            let left = path(value, lhs.trim()).cloned().unwrap_or(Value::Null);
            let right: Value =
                serde_json::from_str(rhs.trim()).map_err(|e| ExprError(format!("{condition:?}: right side: {e}")))?;
            let order = match (left.as_f64(), right.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => match (left.as_str(), right.as_str()) {
                    (Some(a), Some(b)) => Some(a.cmp(b)),
                    _ => None,
                },
            };
            return Ok(match op {
                "==" => left == right,
                "!=" => left != right,
                ">=" => order.is_some_and(|o| o.is_ge()),
                "<=" => order.is_some_and(|o| o.is_le()),
                ">" => order.is_some_and(|o| o.is_gt()),
                _ => order.is_some_and(|o| o.is_lt()),
            });
        }
    }
    Err(ExprError(format!("{condition:?}: expected `<path> <op> <json>` or `<path> exists`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_conditions_and_transforms() {
        let v = json!({"total": 120, "items": [{"sku": "a"}], "status": "ok"});
        assert_eq!(path(&v, "$.items[0].sku"), Some(&json!("a")));
        assert_eq!(path(&v, "$"), Some(&v));
        assert_eq!(condition("$.total > 100", &v), Ok(true));
        assert_eq!(condition("$.status == \"ok\"", &v), Ok(true));
        assert_eq!(condition("$.missing exists", &v), Ok(false));
        assert!(condition("$.total >", &v).is_err());
        assert_eq!(transform(&json!({"amount": "$.total", "fixed": 1}), &v), json!({"amount": 120, "fixed": 1}));
    }
}
