//! The scheduler cache: every Node's [`NodeInfo`] and how many pods each node holds, kept
//! incrementally from the watch so a decision reads a counter instead of counting pods.
//!
//! As in kube-scheduler's cache, a pod the scheduler has decided to bind is *assumed* on its node
//! at once, before the binding is written: the next decision already sees the node one pod fuller,
//! so a burst of decisions cannot overfill a node while bindings are in flight and the watch lags.
//! A binding the apiserver rejects is *forgotten*, giving the slot back. A pod counts on a node
//! from the moment it is assumed or seen bound until it is deleted or terminates (Succeeded or
//! Failed); a Terminating pod still holds its slot, as upstream.

use std::collections::HashMap;

use crate::filter::NodeInfo;

/// Where one pod counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The pod's uid: a pod recreated under the same name is another pod.
    pub uid: String,
    /// The node it counts on.
    pub node: String,
    /// Assumed by this scheduler and not yet confirmed by the apiserver.
    pub assumed: bool,
}

/// One node: its info (None after the Node is deleted, while pods still count on it) and its
/// pod count.
#[derive(Debug, Default)]
struct Entry {
    info: Option<NodeInfo>,
    pods: u32,
}

/// See the module doc.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: HashMap<String, Entry>,
    pods: HashMap<String, Placement>,
    num_nodes: usize,
}

// === impl Cache ===

impl Cache {
    /// Adds or updates a node; true if it is new or anything the filters read changed.
    pub fn set_node(&mut self, info: NodeInfo) -> bool {
        let entry = self.nodes.entry(info.name.clone()).or_default();
        if entry.info.as_ref() == Some(&info) {
            return false;
        }
        if entry.info.is_none() {
            self.num_nodes += 1;
        }
        entry.info = Some(info);
        true
    }

    /// Removes a node; its pods keep counting until they go, in case it comes back.
    pub fn remove_node(&mut self, name: &str) {
        if let Some(entry) = self.nodes.get_mut(name)
            && entry.info.take().is_some()
        {
            self.num_nodes -= 1;
            if entry.pods == 0 {
                self.nodes.remove(name);
            }
        }
    }

    /// How many nodes exist (the N of "0/N nodes are available").
    pub fn num_nodes(&self) -> usize {
        self.num_nodes
    }

    /// Every node with its pod count.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeInfo, u32)> {
        self.nodes.values().filter_map(|e| e.info.as_ref().map(|i| (i, e.pods)))
    }

    /// Pods counted on `node`.
    pub fn pods_on(&self, node: &str) -> u32 {
        self.nodes.get(node).map_or(0, |e| e.pods)
    }

    /// Where the pod `key` counts, if anywhere.
    pub fn placement(&self, key: &str) -> Option<&Placement> {
        self.pods.get(key)
    }

    /// Assumes the pod on `node` while its binding is in flight.
    pub fn assume(&mut self, key: &str, uid: &str, node: &str) {
        self.place(key, Placement { uid: uid.into(), node: node.into(), assumed: true });
    }

    /// The apiserver accepted the binding.
    pub fn confirm(&mut self, key: &str, uid: &str) {
        if let Some(p) = self.pods.get_mut(key)
            && p.uid == uid
        {
            p.assumed = false;
        }
    }

    /// The binding was rejected: gives the slot back. True if the pod was still assumed (a watch
    /// event may already have shown where it really is).
    pub fn forget(&mut self, key: &str, uid: &str) -> bool {
        match self.pods.get(key) {
            Some(p) if p.uid == uid && p.assumed => self.remove(key),
            _ => false,
        }
    }

    /// The watch shows the pod bound to `node` and running: it counts there. True if that freed
    /// a slot elsewhere (it had been assumed on another node).
    pub fn observe_bound(&mut self, key: &str, uid: &str, node: &str) -> bool {
        let previous = self.pods.get(key).cloned();
        match previous {
            Some(p) if p.uid == uid && p.node == node => {
                if let Some(p) = self.pods.get_mut(key) {
                    p.assumed = false;
                }
                false
            }
            _ => self.place(key, Placement { uid: uid.into(), node: node.into(), assumed: false }),
        }
    }

    /// The pod is gone or terminated. True if it held a slot.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(p) = self.pods.remove(key) else { return false };
        if let Some(entry) = self.nodes.get_mut(&p.node) {
            entry.pods = entry.pods.saturating_sub(1);
            if entry.pods == 0 && entry.info.is_none() {
                self.nodes.remove(&p.node);
            }
        }
        true
    }

    /// Counts `placement`, replacing any earlier placement of the same key; true if one existed.
    fn place(&mut self, key: &str, placement: Placement) -> bool {
        let freed = self.remove(key);
        self.nodes.entry(placement.node.clone()).or_default().pods += 1;
        self.pods.insert(key.into(), placement);
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, pods: u32) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            labels: Default::default(),
            unschedulable: false,
            taints: vec![],
            allocatable_pods: pods,
        }
    }

    #[test]
    fn nodes_are_added_changed_and_removed() {
        let mut c = Cache::default();
        assert!(c.set_node(info("n1", 110)));
        assert!(!c.set_node(info("n1", 110)), "the same info is no change");
        assert!(c.set_node(info("n1", 2)), "allocatable changed");
        assert_eq!(c.num_nodes(), 1);
        c.remove_node("n1");
        assert_eq!(c.num_nodes(), 0);
        assert_eq!(c.nodes().count(), 0);
    }

    #[test]
    fn assumed_pods_count_until_forgotten() {
        let mut c = Cache::default();
        c.set_node(info("n1", 2));
        c.assume("demo/a", "u1", "n1");
        c.assume("demo/b", "u2", "n1");
        assert_eq!(c.pods_on("n1"), 2, "assumed pods fill the node before the watch says so");
        assert!(c.forget("demo/a", "u1"));
        assert_eq!(c.pods_on("n1"), 1);
        assert!(!c.forget("demo/a", "u1"), "forgetting twice frees nothing");
    }

    #[test]
    fn a_confirmed_or_observed_pod_is_not_forgotten() {
        let mut c = Cache::default();
        c.set_node(info("n1", 2));
        c.assume("demo/a", "u1", "n1");
        c.confirm("demo/a", "u1");
        assert!(!c.forget("demo/a", "u1"));
        assert_eq!(c.pods_on("n1"), 1);

        c.assume("demo/b", "u2", "n1");
        assert!(!c.observe_bound("demo/b", "u2", "n1"), "the watch confirms the assumption");
        assert!(!c.forget("demo/b", "u2"));
        assert_eq!(c.pods_on("n1"), 2);
    }

    #[test]
    fn another_binder_winning_moves_the_pod() {
        let mut c = Cache::default();
        c.set_node(info("n1", 2));
        c.set_node(info("n2", 2));
        c.assume("demo/a", "u1", "n1");
        assert!(c.observe_bound("demo/a", "u1", "n2"), "the slot on n1 is freed");
        assert_eq!((c.pods_on("n1"), c.pods_on("n2")), (0, 1));
        // The rejected binding arrives afterwards and changes nothing.
        assert!(!c.forget("demo/a", "u1"));
        assert_eq!(c.pods_on("n2"), 1);
    }

    #[test]
    fn removed_pods_free_their_slot_and_pods_outlive_their_node() {
        let mut c = Cache::default();
        c.set_node(info("n1", 2));
        c.observe_bound("demo/a", "u1", "n1");
        c.remove_node("n1");
        assert_eq!(c.pods_on("n1"), 1, "the pod still counts while its node is away");
        c.set_node(info("n1", 2));
        assert_eq!(c.nodes().next().map(|(_, n)| n), Some(1));
        assert!(c.remove("demo/a"));
        assert!(!c.remove("demo/a"));
        assert_eq!(c.pods_on("n1"), 0);
    }
}
