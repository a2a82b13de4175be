//! Nodes recorded by another machine (machines sharing one PostgreSQL
//! state): this one refuses them instead of taking them for gone.

use super::*;

/// A node recorded by another machine (two hosts on one PostgreSQL
/// state) is not this one's to see: refresh and destroy refuse it, naming
/// the machine, instead of taking it for gone and forgetting it.
#[test]
fn a_node_of_another_machine_is_refused_not_forgotten() {
    require_root!();
    let s = Session::new("elsewhere");
    let net = network("lab", "10.77.3.0/24");
    let n = node("here", &[(&net, 2)]);
    s.create(Spec::Network(net.clone()));
    let private = s.create(Spec::Node(n.clone()));
    assert_eq!(
        tg::platform::netns::node_host(&private).as_deref(),
        Some(s.platform.options.host.as_str()),
        "{private}"
    );
    let other = NetnsPlatform::new(NetnsOptions {
        host: "far-away-7".into(),
        ..s.platform.options.clone()
    });
    let read = s.rt.block_on(other.read(ReadRequest {
        session: s.session.clone(),
        address: "node.here".into(),
        spec: Spec::Node(n.clone()),
        private: private.clone(),
    }));
    let err = read.expect_err("read on another machine");
    assert!(
        err.message
            .contains(&format!("runs on host `{}`", s.platform.options.host))
            && err.message.contains("`far-away-7`"),
        "{err}"
    );
    let deleted = s.rt.block_on(other.delete(DeleteRequest {
        session: s.session.clone(),
        address: "node.here".into(),
        spec: Spec::Node(n.clone()),
        private,
        deps: BTreeMap::new(),
        cancel: Default::default(),
        trace: Default::default(),
    }));
    assert!(deleted.is_err(), "another machine deleted the node");
    // Still there, and this machine's own to see.
    assert!(matches!(
        s.read(Spec::Node(n)),
        ReadResponse::Present { .. }
    ));
}
