//! What a kafka-source reader knows of each partition, in a dense table indexed by the topic's
//! place among the topics it met and the partition number: the per-record path (position,
//! largest event time, last record, the watermark's minimum over partitions) neither hashes nor
//! compares topic names.

use std::sync::Arc;
use std::time::Instant;

use super::config::Offsets;

/// What a reader knows of one partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Figures {
    /// The next offset to read: from the checkpoint or the changelog, then advanced by every
    /// record (the rebalance answer assigns at it).
    pub next: Option<i64>,
    /// The largest event time seen, or restored from the partition's previous owner.
    pub max_event_time: Option<i64>,
    /// When the partition last gave a record, or was handed to this instance.
    pub last_seen: Option<Instant>,
    /// `--until-end`: the partition's end when the run started.
    pub end: Option<i64>,
}

/// A partition's place in a `PartitionTable`; valid for the table that gave it (rows only grow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    topic: usize,
    partition: usize,
}

#[derive(Debug, Default)]
pub(super) struct PartitionTable {
    /// Shared with the records read (`Polled::Record`), so naming a record's topic copies no text.
    topics: Vec<Arc<str>>,
    rows: Vec<Vec<Figures>>,
}

impl PartitionTable {
    /// The slot of (`topic`, `partition`), added when new. `None` for a negative partition
    /// number, which names no partition (Kafka numbers them from 0).
    pub fn slot(&mut self, topic: &str, partition: i32) -> Option<Slot> {
        let partition = usize::try_from(partition).ok()?;
        let topic = match self.topics.iter().position(|known| **known == *topic) {
            Some(index) => index,
            None => {
                self.topics.push(Arc::from(topic));
                self.rows.push(Vec::new());
                self.topics.len() - 1
            }
        };
        let row = &mut self.rows[topic];
        if row.len() <= partition {
            row.resize(partition + 1, Figures::default());
        }
        Some(Slot { topic, partition })
    }

    /// The figures of (`topic`, `partition`), added when new (`None`: a negative partition).
    pub fn entry(&mut self, topic: &str, partition: i32) -> Option<&mut Figures> {
        let slot = self.slot(topic, partition)?;
        Some(self.at_mut(slot))
    }

    /// The figures of (`topic`, `partition`) when the table has them.
    pub fn get(&self, topic: &str, partition: i32) -> Option<&Figures> {
        let topic = self.topics.iter().position(|known| **known == *topic)?;
        self.rows[topic].get(usize::try_from(partition).ok()?)
    }

    /// The topic of a slot.
    pub fn topic(&self, slot: Slot) -> &Arc<str> {
        &self.topics[slot.topic]
    }

    pub fn at(&self, slot: Slot) -> &Figures {
        &self.rows[slot.topic][slot.partition]
    }

    pub fn at_mut(&mut self, slot: Slot) -> &mut Figures {
        &mut self.rows[slot.topic][slot.partition]
    }

    /// The next offset of every partition that has one.
    pub fn positions(&self) -> Offsets {
        let mut positions = Offsets::new();
        for (topic, row) in self.topics.iter().zip(&self.rows) {
            for (partition, figures) in row.iter().enumerate() {
                if let (Some(next), Ok(partition)) = (figures.next, i32::try_from(partition)) {
                    positions.insert((topic.to_string(), partition), next);
                }
            }
        }
        positions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_grow_per_topic_and_positions_list_only_partitions_with_one() {
        let mut table = PartitionTable::default();
        table.entry("a", 2).expect("a partition").next = Some(7);
        table.entry("b", 0).expect("a partition").max_event_time = Some(5);
        assert_eq!(table.get("a", 2).and_then(|figures| figures.next), Some(7));
        // Partitions below the highest one met exist, without figures.
        assert_eq!(table.get("a", 1), Some(&Figures::default()));
        assert_eq!(table.get("a", 3), None);
        assert_eq!(table.get("c", 0), None);
        let slot = table.slot("b", 0).expect("a partition");
        assert_eq!(table.at(slot).max_event_time, Some(5));
        assert_eq!(&**table.topic(slot), "b");
        assert_eq!(table.positions(), Offsets::from([(("a".to_string(), 2), 7)]));
    }

    #[test]
    fn a_negative_partition_has_no_slot() {
        let mut table = PartitionTable::default();
        assert!(table.slot("a", -1).is_none());
        assert!(table.get("a", -1).is_none());
        assert!(table.positions().is_empty());
    }
}
