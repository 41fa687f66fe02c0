//! Placeholder: the scheduler is written next.
