//! Label sets and label selectors written the way kubectl writes them (`app=orders,tier=web`,
//! `env in (a,b)`), used by table columns and `describe`: the printers' own, so `describe` and
//! the tables (the CLI's and the apiserver's) write them alike.

pub use netlab_printers::labels::{format_label_selector, format_labels, labels_string, selector_string};
