//! How state looks in a database row, shared by the SQL stores.
//!
//! Owns the encoding of an [`InstanceRecord`] (the whole record as JSON text,
//! plus the `address`, `platform` and `status` columns that repeat parts of
//! it), of output values (JSON text) and of serials (a signed 64-bit column),
//! and the checks every store makes when it reads them back: a row that does
//! not decode, a record stored under another address, a negative serial or a
//! column of the wrong type is [`StateError::Damaged`], naming the store's
//! location and the row, never a panic. It does not know SQL or any driver:
//! the stores read the columns and hand the values here.

use std::collections::BTreeMap;

use super::{InstanceRecord, InstanceStatus, OutputRecord, StateError, StateResult, StateWrite};
use crate::addrs::InstanceAddr;

/// An instance record as the columns of an `instances` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRow {
    /// `node.edge[0]`.
    pub address: String,
    pub platform: String,
    /// `ready` or `tainted`.
    pub status: &'static str,
    /// The whole record as JSON.
    pub record: String,
}

/// An output as the columns of an `outputs` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRow {
    pub name: String,
    /// The value as JSON.
    pub value: String,
    pub sensitive: bool,
}

/// A batch of writes as the rows it leaves behind. A batch is one
/// transaction, so only the last write to each address (and the last
/// `Outputs`) matters: an address is in `puts` or in `removes`, not both,
/// and at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedBatch {
    pub puts: Vec<InstanceRow>,
    /// Addresses to forget.
    pub removes: Vec<String>,
    /// The outputs that replace all others, when the batch sets them.
    pub outputs: Option<Vec<OutputRow>>,
}

/// Encode `writes` (see [`EncodedBatch`]). Refused as a whole when one of
/// them cannot be encoded: nothing is written.
pub fn encode_batch(location: &str, writes: &[StateWrite]) -> StateResult<EncodedBatch> {
    let mut last: BTreeMap<String, Option<InstanceRow>> = BTreeMap::new();
    let mut outputs = None;
    for w in writes {
        match w {
            StateWrite::Put(r) => {
                let row = encode_instance(location, r)?;
                last.insert(row.address.clone(), Some(row));
            }
            StateWrite::Remove(a) => {
                last.insert(a.to_string(), None);
            }
            StateWrite::Outputs(o) => outputs = Some(encode_outputs(location, o)?),
        }
    }
    let mut batch = EncodedBatch {
        outputs,
        ..EncodedBatch::default()
    };
    for (address, row) in last {
        match row {
            Some(row) => batch.puts.push(row),
            None => batch.removes.push(address),
        }
    }
    Ok(batch)
}

/// Encode every output.
pub fn encode_outputs(
    location: &str,
    outputs: &BTreeMap<String, OutputRecord>,
) -> StateResult<Vec<OutputRow>> {
    outputs
        .iter()
        .map(|(name, o)| encode_output(location, name, o))
        .collect()
}

/// The `status` column of a record.
pub fn status_name(status: InstanceStatus) -> &'static str {
    match status {
        InstanceStatus::Ready => "ready",
        InstanceStatus::Tainted => "tainted",
    }
}

/// Encode a record for writing. Refused (nothing is written) when its
/// address would not read back as itself: such a record could be written
/// but never loaded again.
pub fn encode_instance(location: &str, record: &InstanceRecord) -> StateResult<InstanceRow> {
    check_address(location, &record.address)?;
    let address = record.address.to_string();
    let json = serde_json::to_string(record).map_err(|e| StateError::Backend {
        location: location.to_string(),
        message: format!("cannot encode instance `{address}` as JSON: {e}"),
    })?;
    Ok(InstanceRow {
        address,
        platform: record.platform.clone(),
        status: status_name(record.status),
        record: json,
    })
}

/// Refuse an address that would not read back as itself (every store
/// checks this, so none records what it could not load again).
pub fn check_address(location: &str, address: &InstanceAddr) -> StateResult<()> {
    let text = address.to_string();
    if text.parse::<InstanceAddr>().as_ref() == Ok(address) {
        return Ok(());
    }
    Err(StateError::Backend {
        location: location.to_string(),
        message: format!(
            "cannot record `{text}`: its address does not read back as itself (a key with `\"` or `\\` in it); nothing was written"
        ),
    })
}

/// Decode the record stored in session `session` under `row_address`;
/// it must be the record of that address.
pub fn decode_instance(
    location: &str,
    session: &str,
    row_address: &str,
    record: &str,
) -> StateResult<InstanceRecord> {
    let decoded: InstanceRecord = serde_json::from_str(record).map_err(|e| {
        damaged(
            location,
            format!("the record of `{row_address}` in session `{session}` cannot be read ({e})"),
        )
    })?;
    if decoded.address.to_string() != row_address {
        return Err(damaged(
            location,
            format!(
                "the record stored under `{row_address}` in session `{session}` is the record of `{}`",
                decoded.address
            ),
        ));
    }
    Ok(decoded)
}

/// Encode one output for writing.
pub fn encode_output(location: &str, name: &str, output: &OutputRecord) -> StateResult<OutputRow> {
    let value = serde_json::to_string(&output.value).map_err(|e| StateError::Backend {
        location: location.to_string(),
        message: format!("cannot encode output `{name}` as JSON: {e}"),
    })?;
    Ok(OutputRow {
        name: name.to_string(),
        value,
        sensitive: output.sensitive,
    })
}

/// Decode output `name` of session `session`.
pub fn decode_output(
    location: &str,
    session: &str,
    name: &str,
    value: &str,
    sensitive: bool,
) -> StateResult<OutputRecord> {
    let value = serde_json::from_str(value).map_err(|e| {
        damaged(
            location,
            format!("output `{name}` of session `{session}` cannot be read ({e})"),
        )
    })?;
    Ok(OutputRecord { value, sensitive })
}

/// A serial as stored: a non-negative 64-bit signed integer.
pub fn serial_from_db(location: &str, session: &str, stored: i64) -> StateResult<u64> {
    u64::try_from(stored).map_err(|_| {
        damaged(
            location,
            format!("session `{session}` has the serial {stored}, expected a number >= 0"),
        )
    })
}

/// A serial for storing; refused when it does not fit the column.
pub fn serial_to_db(location: &str, serial: u64) -> StateResult<i64> {
    i64::try_from(serial).map_err(|_| StateError::Backend {
        location: location.to_string(),
        message: format!("the serial {serial} is too large to store"),
    })
}

/// A count (of instances) as stored.
pub fn count_from_db(location: &str, what: &str, stored: i64) -> StateResult<usize> {
    usize::try_from(stored).map_err(|_| {
        damaged(
            location,
            format!("{what} is {stored}, expected a number >= 0"),
        )
    })
}

/// A lock holder's pid as stored; a pid that does not fit is no live
/// process (0, which is never alive).
pub fn pid_from_db(stored: i64) -> u32 {
    u32::try_from(stored).unwrap_or(0)
}

/// A column that could not be read as the type tg wrote: a hand-edited
/// schema or row. `column` is `table.column`, `row` says which row.
pub fn bad_column(
    location: &str,
    column: &str,
    row: &str,
    reason: impl std::fmt::Display,
) -> StateError {
    damaged(
        location,
        format!("column `{column}` of {row} cannot be read ({reason})"),
    )
}

/// The error for a damaged store.
pub fn damaged(location: &str, reason: impl Into<String>) -> StateError {
    StateError::Damaged {
        location: location.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addrs::{InstanceKey, ResourceKind};
    use crate::platform::{NetworkSpec, Spec};

    fn record(key: InstanceKey) -> InstanceRecord {
        InstanceRecord {
            sensitive: Vec::new(),
            address: InstanceAddr::new(ResourceKind::Network, "lab", key),
            platform: "netns".into(),
            status: InstanceStatus::Tainted,
            spec: Spec::Network(NetworkSpec {
                name: "lab".into(),
                cidr: "10.1.0.0/24".parse().unwrap(),
                gateway: "10.1.0.1".parse().unwrap(),
                nat: false,
                hosts: Vec::new(),
            }),
            private: serde_json::json!({"z": 1, "a": 2}),
            dependencies: vec![],
            attributes: serde_json::json!({}),
        }
    }

    #[test]
    fn records_round_trip_and_keep_key_order() {
        let r = record(InstanceKey::Str("a-b".into()));
        let row = encode_instance("loc", &r).unwrap();
        assert_eq!(row.address, "network.lab[\"a-b\"]");
        assert_eq!(row.status, "tainted");
        assert!(row.record.contains(r#"{"z":1,"a":2}"#), "{}", row.record);
        assert_eq!(
            decode_instance("loc", "s", &row.address, &row.record).unwrap(),
            r
        );
    }

    #[test]
    fn a_batch_keeps_the_last_write_of_each_address() {
        let a = record(InstanceKey::Int(1));
        let b = record(InstanceKey::Int(2));
        let mut a2 = a.clone();
        a2.status = InstanceStatus::Ready;
        let out = |v: i64| {
            BTreeMap::from([(
                "o".to_string(),
                OutputRecord {
                    value: v.into(),
                    sensitive: false,
                },
            )])
        };
        let batch = encode_batch(
            "l",
            &[
                StateWrite::Put(a.clone()),
                StateWrite::Outputs(out(1)),
                StateWrite::Put(b.clone()),
                StateWrite::Remove(b.address.clone()),
                StateWrite::Put(a2.clone()),
                StateWrite::Outputs(out(2)),
            ],
        )
        .unwrap();
        assert_eq!(batch.puts, vec![encode_instance("l", &a2).unwrap()]);
        assert_eq!(batch.removes, vec![b.address.to_string()]);
        assert_eq!(batch.outputs.unwrap()[0].value, "2");
        assert_eq!(encode_batch("l", &[]).unwrap(), EncodedBatch::default());
    }

    #[test]
    fn a_record_under_another_address_is_damage() {
        let row = encode_instance("loc", &record(InstanceKey::Int(1))).unwrap();
        let err = decode_instance("loc", "s", "network.lab[2]", &row.record).unwrap_err();
        assert!(matches!(err, StateError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("`network.lab[2]`"), "{err}");
        assert!(err.to_string().contains("`network.lab[1]`"), "{err}");
    }

    #[test]
    fn unreadable_rows_are_damage_naming_the_row() {
        for text in ["", "{not json", "[]", r#"{"address":"network.lab"}"#] {
            let err = decode_instance("sqlite x", "s", "network.lab", text).unwrap_err();
            let StateError::Damaged { location, reason } = &err else {
                panic!("{err}")
            };
            assert_eq!(location, "sqlite x");
            assert!(reason.contains("`network.lab`"), "{reason}");
        }
        assert!(matches!(
            decode_output("l", "s", "o", "nope", false),
            Err(StateError::Damaged { .. })
        ));
        assert!(matches!(
            serial_from_db("l", "s", -1),
            Err(StateError::Damaged { .. })
        ));
    }

    #[test]
    fn records_of_older_tg_without_optional_fields_load() {
        let old = r#"{"address":"network.lab","platform":"netns","status":"ready",
            "spec":{"kind":"network","name":"lab","cidr":"10.1.0.0/24","gateway":"10.1.0.1","nat":false}}"#;
        let r = decode_instance("l", "s", "network.lab", old).unwrap();
        assert!(r.private.is_null());
        assert!(r.dependencies.is_empty());
        assert!(r.attributes.is_null());
    }

    #[test]
    fn addresses_that_do_not_read_back_are_refused_before_writing() {
        let err = encode_instance("loc", &record(InstanceKey::Str("a\"b".into()))).unwrap_err();
        assert!(err.to_string().contains("nothing was written"), "{err}");
        let err = encode_instance("loc", &record(InstanceKey::Str("a\\b".into()))).unwrap_err();
        assert!(err.to_string().contains("does not read back"), "{err}");
    }
}
