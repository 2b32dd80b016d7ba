//! Event `format` files (tracefs `events/GROUP/NAME/format`, tracepoints and
//! this process's kprobes alike) parsed into the event's id and field
//! layouts, so every event is decoded by the offsets the running kernel
//! states rather than by offsets compiled in. Also reads the
//! `__print_symbolic` tables of the print format (drop reason names).

use std::collections::BTreeMap;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("format of {event}: no '{what}' line")]
    Missing { event: String, what: &'static str },
    #[error("{event}: no field '{field}' in its format")]
    NoField { event: String, field: String },
    #[error("{event}: field '{field}' is {size} bytes, expected {expected}")]
    FieldSize {
        event: String,
        field: String,
        size: usize,
        expected: String,
    },
}

/// One field of an event record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
    /// `__u8 saddr[28]`: 28.
    pub array_len: Option<usize>,
    /// A `__data_loc` field: the record holds a (length, offset) word.
    pub data_loc: bool,
}

/// An event's layout as its format file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    pub name: String,
    pub id: u64,
    pub fields: Vec<Field>,
    /// field → value → name, from `__print_symbolic(REC->field, { 2, "X" }, ..)`
    /// where the values are numbers.
    pub symbols: BTreeMap<String, BTreeMap<u64, String>>,
}

impl EventFormat {
    pub fn parse(text: &str) -> Result<EventFormat, FormatError> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        let mut symbols = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("name:") {
                name = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("ID:") {
                id = rest.trim().parse::<u64>().ok();
            } else if line.starts_with("field:") {
                if let Some(field) = parse_field(line) {
                    fields.push(field);
                }
            } else if let Some(rest) = line.strip_prefix("print fmt:") {
                symbols = parse_symbols(rest);
            }
        }
        let name = name.unwrap_or_default();
        let id = id.ok_or(FormatError::Missing {
            event: name.clone(),
            what: "ID",
        })?;
        if fields.is_empty() {
            return Err(FormatError::Missing {
                event: name,
                what: "field",
            });
        }
        Ok(EventFormat {
            name,
            id,
            fields,
            symbols,
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field, which must exist and be `size` bytes long.
    pub fn sized(&self, name: &str, sizes: &[usize]) -> Result<Field, FormatError> {
        let field = self.field(name).ok_or_else(|| FormatError::NoField {
            event: self.name.clone(),
            field: name.to_string(),
        })?;
        if !sizes.contains(&field.size) {
            return Err(FormatError::FieldSize {
                event: self.name.clone(),
                field: name.to_string(),
                size: field.size,
                expected: format!("{sizes:?}"),
            });
        }
        Ok(field.clone())
    }
}

/// `field:const void * skaddr; offset:8; size:8; signed:0;`
fn parse_field(line: &str) -> Option<Field> {
    let mut declaration = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';') {
        let part = part.trim();
        if let Some(rest) = part.strip_prefix("field:") {
            declaration = Some(rest.trim());
        } else if let Some(rest) = part.strip_prefix("offset:") {
            offset = rest.trim().parse().ok();
        } else if let Some(rest) = part.strip_prefix("size:") {
            size = rest.trim().parse().ok();
        } else if let Some(rest) = part.strip_prefix("signed:") {
            signed = rest.trim() == "1";
        }
    }
    let declaration = declaration?;
    let data_loc = declaration.starts_with("__data_loc");
    let last = declaration.split_whitespace().last()?;
    let (name, array_len) = match last.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
        None => (last, None),
    };
    let name = name.trim_start_matches('*');
    if name.is_empty() {
        return None;
    }
    Some(Field {
        name: name.to_string(),
        offset: offset?,
        size: size?,
        signed,
        array_len,
        data_loc,
    })
}

/// The numeric `{ value, "NAME" }` tables of each `__print_symbolic(REC->f, ...)`.
fn parse_symbols(print_fmt: &str) -> BTreeMap<String, BTreeMap<u64, String>> {
    let mut tables = BTreeMap::new();
    let mut rest = print_fmt;
    while let Some(start) = rest.find("__print_symbolic(REC->") {
        rest = &rest[start + "__print_symbolic(REC->".len()..];
        let Some(comma) = rest.find(',') else { break };
        let field = rest[..comma].trim().to_string();
        // The table ends at the first ')' outside a quoted name.
        let mut end = rest.len();
        let mut quoted = false;
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ')' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        // A ')' before the first ',' (no table there) gives an empty body.
        let body = rest.get(comma + 1..end).unwrap_or("");
        let mut table = BTreeMap::new();
        for entry in body.split('{').skip(1) {
            let entry = entry.split('}').next().unwrap_or("");
            let Some((value, label)) = entry.split_once(',') else {
                continue;
            };
            let value = value.trim();
            let parsed = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => value.parse().ok(),
            };
            if let Some(v) = parsed {
                table.insert(v, label.trim().trim_matches('"').to_string());
            }
        }
        if !table.is_empty() {
            tables.insert(field, table);
        }
        rest = &rest[end.min(rest.len())..];
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND_RESET_6_18: &str = "name: tcp_send_reset
ID: 2270
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;
\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;
\tfield:__u8 daddr[28];\toffset:60;\tsize:28;\tsigned:0;

print fmt: \"skbaddr=%p state=%s\", REC->skbaddr, REC->state ? __print_symbolic(REC->state, { TCP_ESTABLISHED, \"TCP_ESTABLISHED\" }) : \"UNKNOWN\"
";

    #[test]
    fn fields_arrays_and_signedness_are_read() {
        let f = EventFormat::parse(SEND_RESET_6_18).unwrap();
        assert_eq!(f.id, 2270);
        assert_eq!(f.name, "tcp_send_reset");
        let saddr = f.field("saddr").unwrap();
        assert_eq!(
            (saddr.offset, saddr.size, saddr.array_len),
            (32, 28, Some(28))
        );
        assert!(f.field("state").unwrap().signed);
        assert_eq!(f.field("skaddr").unwrap().offset, 16);
        // Enum names, not numbers: no table.
        assert!(f.symbols.is_empty());
    }

    #[test]
    fn numeric_symbol_tables_are_kept() {
        let text = "name: kfree_skb\nID: 1\nformat:\n\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;\n\nprint fmt: \"reason: %s\", __print_symbolic(REC->reason, { 2, \"NOT_SPECIFIED\" }, { 3, \"NO_SOCKET\" }, { 0x10, \"X(Y)\" })\n";
        let f = EventFormat::parse(text).unwrap();
        let reasons = &f.symbols["reason"];
        assert_eq!(reasons[&2], "NOT_SPECIFIED");
        assert_eq!(reasons[&3], "NO_SOCKET");
        assert_eq!(reasons[&16], "X(Y)");
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        assert!(EventFormat::parse("").is_err());
        assert!(EventFormat::parse("\u{0}\u{1}ID:").is_err());
        for cut in 0..SEND_RESET_6_18.len() {
            if SEND_RESET_6_18.is_char_boundary(cut) {
                let _ = EventFormat::parse(&SEND_RESET_6_18[..cut]);
            }
        }
        let f = EventFormat::parse(SEND_RESET_6_18).unwrap();
        assert!(matches!(
            f.sized("nope", &[4]),
            Err(FormatError::NoField { .. })
        ));
        assert!(matches!(
            f.sized("state", &[8]),
            Err(FormatError::FieldSize { .. })
        ));
    }

    #[test]
    fn a_symbol_table_closed_before_its_first_comma_is_no_panic() {
        let tables = parse_symbols("\"x\", __print_symbolic(REC->f) , { 1, \"A\" }");
        assert!(tables.get("f)").is_none_or(|t| t.is_empty()), "{tables:?}");
        let tables = parse_symbols("__print_symbolic(REC->reason, { 2, \"NO_SOCKET\" })");
        assert_eq!(tables["reason"][&2], "NO_SOCKET");
    }
}
