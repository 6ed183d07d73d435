//! The deploy pipeline: build → render → plan → apply → track → smoke → record.
