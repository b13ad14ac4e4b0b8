//! kafka-source and kafka-sink over librdkafka (the bundled build, synchronous API).
//!
//! Sources join the consumer group and consume with `read_committed`. Partitions are assigned at
//! the offsets of the last local checkpoint when it knows them, else where `readSetting` says:
//! the checkpoint, not the group's committed offsets, is the source of truth.
//!
//! Sinks share one producer per broker list. With `deliveryGuarantee: exactly-once` it is
//! transactional: everything produced between two checkpoints, plus the source offsets
//! (`send_offsets_to_transaction`), commits in one transaction, then the local checkpoint is
//! written. A crash between the two leaves the group offsets ahead of the local checkpoint; the
//! restarted run replays that stretch with transactional output muted (it was committed already).
//! Every record carries a `pulse-id` header derived from its origin (source partition and offset,
//! or timer), the node and the output index, so a consumer can drop replays of aborted
//! transactions on brokers that do not filter them.
//!
//! | module        | what it holds                                                        |
//! |---------------|----------------------------------------------------------------------|
//! | `config`      | `KafkaEnv`, client properties, error wording, record ids             |
//! | `source`      | `KafkaReader`: the consumer of a kafka-source                        |
//! | `producer`    | `KafkaWriter`: the (transactional) producer                          |
//! | `changelog`   | the changelog's batch format and how a restore folds it              |
//! | `admin`       | topic creation, partition counts, purging                            |
//! | `repartition` | the stage that re-keys a topic through the repartition topic         |
//! | `tasks`       | state that follows partitions: which shards an instance owns         |
//!
//! Imports go one way, with no cycle: `source` → `repartition` → `producer` → `changelog` →
//! `admin` → `config`, and `tasks` → `changelog`.

mod admin;
mod changelog;
mod config;
mod partitions;
mod producer;
pub mod repartition;
mod source;
pub mod tasks;

pub use admin::{ensure_topic, partition_count, Purger};
pub use changelog::{
    group_committed, read_changelog, ChangelogFold, ChangelogMode, ChangelogPartition, Folded, Marker, BATCH_HEADER,
    MARKER_KEY,
};
pub use config::{duration_from_env, parse_properties, record_id, record_stable_ends, Error, KafkaEnv, Offsets};
pub use producer::{commit_in_order, partition_transactional_id, transactional_id, KafkaWriter, ProducerSettings};
pub use source::{describe_partitions, group_name, source_group, KafkaReader, Polled, Rebalance, SourceSettings};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::config::Role;
    use super::source::PAUSE_AFTER;
    use super::*;

    #[test]
    fn durations_from_the_environment_are_parsed_or_refused() {
        let name = "PULSE_TEST_KAFKA_DURATION";
        std::env::remove_var(name);
        assert_eq!(duration_from_env(name, PAUSE_AFTER).ok(), Some(PAUSE_AFTER));
        std::env::set_var(name, "250ms");
        assert_eq!(duration_from_env(name, PAUSE_AFTER).ok(), Some(Duration::from_millis(250)));
        std::env::set_var(name, "soon");
        let error = duration_from_env(name, PAUSE_AFTER).expect_err("not a duration");
        assert!(error.is_setting() && error.to_string().starts_with(name), "{error}");
        std::env::remove_var(name);
    }

    /// (key, value) pairs as text, for comparing restores.
    fn writes(read: &ChangelogPartition) -> Vec<(String, Option<String>)> {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        read.writes.iter().map(|(key, value)| (text(key), value.as_deref().map(text))).collect()
    }

    /// A marker building on the batch whose marker precedes `base`, with `timers` to tell
    /// markers apart.
    fn marker(base: Option<i64>, timers: u64) -> Vec<u8> {
        crate::kafka::changelog::Marker { positions: Vec::new(), max_event_time: i64::MIN, timers, base, origin: None }
            .to_bytes()
    }

    fn finished(fold: ChangelogFold, head: Option<i64>) -> ChangelogPartition {
        match fold.finish(head) {
            Ok(Folded::Done(read)) => read,
            other => panic!("expected a restore, got {other:?}"),
        }
    }

    fn text(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs.iter().map(|(key, value)| (key.to_string(), value.map(str::to_string))).collect()
    }

    #[test]
    fn markers_without_a_base_count_every_batch_they_close() {
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 10);
        fold.push(10, "a/1", b"k1", Some(b"1"));
        fold.push(11, "a/1", MARKER_KEY, Some(b"marker 1"));
        // Instance a died in checkpoint 2 before its marker; b restored from marker 1.
        fold.push(12, "a/2", b"k2", Some(b"aborted"));
        fold.push(13, "b/1", b"k3", None);
        fold.push(14, "b/1", MARKER_KEY, Some(b"marker 2"));
        fold.push(15, "b/2", b"k4", Some(b"no marker yet"));
        let read = finished(fold, None);
        assert_eq!(writes(&read), text(&[("k1", Some("1")), ("k3", None)]));
        assert_eq!(read.marker.as_deref(), Some(&b"marker 2"[..]));
        assert_eq!((read.next, read.records, read.aborted), (15, 6, 0));
    }

    #[test]
    fn a_batch_closed_by_its_marker_but_never_committed_is_skipped() {
        // a committed batch 1, then died after batch 2's records and marker reached the broker
        // but before its transaction committed: the group's changelog offset still says 12.
        let (m1, m2) = (marker(Some(10), 1), marker(Some(12), 2));
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 10);
        fold.push(10, "a/1", b"k1", Some(b"1"));
        fold.push(11, "a/1", MARKER_KEY, Some(&m1));
        fold.push(12, "a/2", b"k1", Some(b"2"));
        fold.push(13, "a/2", MARKER_KEY, Some(&m2));
        let read = finished(fold, Some(12));
        assert_eq!(writes(&read), text(&[("k1", Some("1"))]));
        assert_eq!(read.marker, Some(m1));
        assert_eq!((read.next, read.aborted), (12, 1));
    }

    #[test]
    fn the_next_owner_s_batches_skip_an_aborted_one_before_them() {
        // b restored from a's batch 1 (ending at 12), skipping a's aborted batch 2, and
        // committed two batches of its own: a later restore from the start follows b's bases.
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 0);
        let records: [(i64, &str, &[u8], Vec<u8>); 8] = [
            (10, "a/1", b"k1", b"1".to_vec()),
            (11, "a/1", MARKER_KEY, marker(Some(0), 1)),
            (12, "a/2", b"k1", b"aborted".to_vec()),
            (13, "a/2", MARKER_KEY, marker(Some(12), 2)),
            (14, "b/1", b"k2", b"2".to_vec()),
            (15, "b/1", MARKER_KEY, marker(Some(12), 3)),
            (16, "b/2", b"k1", b"3".to_vec()),
            (17, "b/2", MARKER_KEY, marker(Some(16), 4)),
        ];
        for (offset, batch, key, value) in &records {
            fold.push(*offset, batch, key, Some(value));
        }
        let read = finished(fold, Some(18));
        assert_eq!(writes(&read), text(&[("k1", Some("1")), ("k2", Some("2")), ("k1", Some("3"))]));
        assert_eq!(read.marker, Some(marker(Some(16), 4)));
        assert_eq!((read.next, read.aborted), (18, 1));
    }

    #[test]
    fn nothing_committed_past_local_state_applies_nothing() {
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 12);
        fold.push(12, "a/2", b"k1", Some(b"aborted"));
        fold.push(13, "a/2", MARKER_KEY, Some(&marker(Some(12), 2)));
        let read = finished(fold, Some(12));
        assert!(read.writes.is_empty() && read.marker.is_none());
        assert_eq!((read.next, read.aborted), (12, 1));
    }

    #[test]
    fn a_history_that_bypasses_local_state_is_read_again_and_a_broken_one_refused() {
        // Local state reflects the changelog up to offset 20, but the committed batch (marker
        // at 21) builds on the one whose marker is at 11: local state holds batches the
        // committed history does not.
        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 20);
        fold.push(20, "b/1", b"k1", Some(b"1"));
        fold.push(21, "b/1", MARKER_KEY, Some(&marker(Some(12), 1)));
        assert!(matches!(fold.finish(Some(22)), Ok(Folded::Rewind)));

        let mut fold = ChangelogFold::new(ChangelogMode::Batches, 0, 0);
        fold.push(20, "b/1", b"k1", Some(b"1"));
        fold.push(21, "b/1", MARKER_KEY, Some(&marker(Some(0), 1)));
        let error = fold.finish(Some(30)).expect_err("no batch ends at 30");
        assert!(error.to_string().contains("committed position 30"), "{error}");
    }

    #[test]
    fn a_compacted_changelog_keeps_the_records_whose_markers_compaction_removed() {
        // After compaction: k1 of batch 1 and k2 of batch 2 survive, their markers do not (each
        // marker replaced the one before); only batch 3's marker is left.
        let records =
            [(3, "a/1", "k1", "1"), (7, "a/2", "k2", "2"), (9, "a/3", "k3", "3"), (10, "a/3", "m", "marker 3")];
        let mut compacted = ChangelogFold::new(ChangelogMode::Compacted, 0, 0);
        let mut batches = ChangelogFold::new(ChangelogMode::Batches, 0, 0);
        for (offset, batch, key, value) in records {
            compacted.push(offset, batch, key.as_bytes(), Some(value.as_bytes()));
            batches.push(offset, batch, key.as_bytes(), Some(value.as_bytes()));
        }
        let compacted = finished(compacted, Some(11));
        assert_eq!(writes(&compacted).len(), 3, "every surviving record counts");
        assert_eq!(writes(&finished(batches, Some(11))).len(), 1, "read as batches, compaction would lose k1 and k2");
        assert_eq!(compacted.next, 11);
    }

    #[test]
    fn properties_parse_and_report_the_bad_line() {
        let parsed = parse_properties("# security\nsecurity.protocol = SASL_SSL\n\nsasl.mechanism=PLAIN\n");
        assert_eq!(
            parsed.expect("valid"),
            vec![
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.mechanism".to_string(), "PLAIN".to_string())
            ]
        );
        assert_eq!(parse_properties("a=1\noops\n").expect_err("invalid").to_string(), "line 2: expected `name=value`");
    }

    #[test]
    fn each_client_gets_the_properties_of_its_kind() {
        let env = KafkaEnv {
            brokers: None,
            group_id: None,
            properties: vec![
                ("session.timeout.ms".to_string(), "3000".to_string()),
                ("linger.ms".to_string(), "5".to_string()),
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ],
        };
        let consumer = env.config(Some("b:9092"), Role::Consumer).expect("config");
        assert_eq!(consumer.get("session.timeout.ms"), Some("3000"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(consumer.get("security.protocol"), Some("SASL_SSL"));
        let producer = env.config(Some("b:9092"), Role::Producer).expect("config");
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(producer.get("linger.ms"), Some("5"));
        let admin = env.config(Some("b:9092"), Role::Admin).expect("config");
        assert_eq!((admin.get("session.timeout.ms"), admin.get("linger.ms")), (None, None));
        assert_eq!(admin.get("security.protocol"), Some("SASL_SSL"));
    }

    #[test]
    fn record_ids_depend_on_every_part() {
        let id = record_id("in/0/5", "out", 0);
        assert_eq!(id, record_id("in/0/5", "out", 0));
        assert_ne!(id, record_id("in/0/6", "out", 0));
        assert_ne!(id, record_id("in/0/5", "other", 0));
        assert_ne!(id, record_id("in/0/5", "out", 1));
    }
}
