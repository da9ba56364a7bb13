//! A request as short text for a bad-call report: fields as `name: value`, enums by name,
//! strings escaped (a NUL shows as `\0`), long strings and lists summarised so a 1 MiB
//! value or 10,000 elements still fit in a few KB, and API keys never shown.

use std::fmt::Write;

use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Value};

/// Characters of a string shown before it is summarised.
const STRING_HEAD: usize = 96;
/// Elements of a list shown before it is summarised.
const LIST_HEAD: usize = 4;

/// `msg` as text, at most about `limit` bytes.
pub fn render(msg: &DynamicMessage, limit: usize) -> String {
    let mut out = String::new();
    message(&mut out, msg);
    if out.len() > limit {
        let cut = (0..=limit).rev().find(|i| out.is_char_boundary(*i)).unwrap_or(0);
        out.truncate(cut);
        out.push_str(" …(truncated)");
    }
    out
}

fn message(out: &mut String, msg: &DynamicMessage) {
    out.push('{');
    let mut first = true;
    for (field, value) in msg.fields() {
        out.push_str(if first { " " } else { ", " });
        first = false;
        out.push_str(field.name());
        out.push_str(": ");
        if field.name() == "api_key" {
            out.push_str("\"***\"");
        } else {
            self::value(out, &field.kind(), value);
        }
    }
    out.push_str(if first { "}" } else { " }" });
}

fn value(out: &mut String, kind: &Kind, v: &Value) {
    match v {
        Value::String(s) => string(out, s),
        Value::EnumNumber(n) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
            Some(known) => out.push_str(known.name()),
            None => {
                let _ = write!(out, "{n} (unknown)");
            }
        },
        Value::Message(m) if m.descriptor().full_name() == "google.protobuf.Timestamp" => {
            let seconds = m.get_field_by_name("seconds").and_then(|v| v.as_i64()).unwrap_or_default();
            let nanos = m.get_field_by_name("nanos").and_then(|v| v.as_i32()).unwrap_or_default();
            let _ = write!(out, "Timestamp({seconds}s, {nanos}ns)");
        }
        Value::Message(m) => message(out, m),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().take(LIST_HEAD).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                value(out, kind, item);
            }
            if items.len() > LIST_HEAD {
                let _ = write!(out, ", …({} items)", items.len());
            }
            out.push(']');
        }
        Value::Bytes(b) => {
            let _ = write!(out, "bytes({})", b.len());
        }
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

/// A string escaped; a long one as its head, its length and what it repeats.
fn string(out: &mut String, s: &str) {
    let chars = s.chars().count();
    if chars <= STRING_HEAD {
        let _ = write!(out, "{s:?}");
        return;
    }
    let head: String = s.chars().take(STRING_HEAD).collect();
    let _ = write!(out, "{head:?}…({chars} chars, {} bytes)", s.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_summarised_and_keys_hidden() {
        let pool = crate::methods::pool().expect("pool"); // ok: test
        let desc = pool.get_message_by_name("ferry.integration.v1.CreateIntegrationRequest").expect("message"); // ok: test
        let mut msg = DynamicMessage::new(desc);
        msg.set_field_by_name("parent", Value::String("x".repeat(1 << 20)));
        msg.set_field_by_name("api_key", Value::String("s3cret".into()));
        msg.set_field_by_name("request_id", Value::String("a\u{0}b".into()));
        let text = render(&msg, 4096);
        assert!(text.len() < 400, "{text}");
        assert!(text.contains("1048576 chars"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("\\0"), "{text}");
    }
}
