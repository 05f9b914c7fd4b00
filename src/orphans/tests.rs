//! The orphan rules on hand-made snapshots: no process is started.

use super::*;

const UID: u32 = 1000;

fn p(pid: u32, parent: u32, group: u32, argv: &str) -> Proc {
    Proc {
        pid,
        parent,
        group,
        start_time: pid as u64 * 10,
        uid: Some(UID),
        argv: argv.split(' ').map(String::from).collect(),
        rss_bytes: 1 << 20,
        age_secs: 60,
        stdin_pipe: None,
    }
}

/// pid 1, a login shell 100 (this process 101 under it), and `extra`.
fn snapshot(extra: Vec<Proc>) -> Snapshot {
    let mut init = p(1, 0, 1, "/sbin/init");
    init.uid = Some(0);
    let mut procs = vec![
        init,
        p(100, 1, 100, "-bash"),
        p(101, 100, 101, "mcpshare orphans"),
    ];
    procs.extend(extra);
    Snapshot {
        procs: procs.into_iter().map(|p| (p.pid, p)).collect(),
        uid: UID,
        me: 101,
        ..Snapshot::default()
    }
}

fn with_stdin(mut p: Proc, inode: u64) -> Proc {
    p.stdin_pipe = Some(inode);
    p
}

#[test]
fn an_npx_tree_left_by_its_client_is_one_orphan() {
    let snap = snapshot(vec![
        with_stdin(
            p(200, 1, 200, "npm exec @modelcontextprotocol/server-memory"),
            7,
        ),
        with_stdin(p(201, 200, 200, "sh -c server-memory"), 7),
        with_stdin(
            p(
                202,
                201,
                200,
                "node /h/.npm/_npx/1/node_modules/.bin/server-memory",
            ),
            7,
        ),
    ]);
    let found = orphans(&snap);
    assert_eq!(found.len(), 1, "{found:?}");
    let o = &found[0];
    assert_eq!(o.pid, 200);
    assert_eq!(o.pids(), [200, 201, 202]);
    assert_eq!(o.rss_bytes, 3 << 20);
    assert_eq!(o.start_time, 2000);
    assert_eq!(o.parent, 1);
    assert!(o.reasons[0].contains("adopted by pid 1"), "{:?}", o.reasons);
    assert!(o.reasons.iter().any(|r| r.contains("writer is gone")));
    assert!(o.reasons.iter().any(|r| r.contains("@*/server-*")));
    assert_eq!(judge(&snap, 202), Verdict::InTree { root: 200 });
    let text = render(&found);
    assert!(text.ends_with("1 orphan, 3.0 MiB\n"), "{text}");
    assert!(text.contains("tree: pid 200, 201, 202"), "{text}");
}

#[test]
fn a_server_with_a_live_parent_or_writer_is_not_listed() {
    let mut snap = snapshot(vec![
        p(
            300,
            100,
            300,
            "node /x/node_modules/@scope/server-y/index.js",
        ),
        with_stdin(p(301, 1, 301, "npx -y mcp-remote https://x"), 9),
        p(302, 1, 302, "node /x/node_modules/@scope/server-z/index.js"),
    ]);
    snap.writers.insert(9, BTreeSet::from([100]));
    assert_eq!(judge(&snap, 300), Verdict::HasParent { parent: 100 });
    assert_eq!(judge(&snap, 301), Verdict::ClientAlive { writer: 100 });
    let found: Vec<u32> = orphans(&snap).iter().map(|o| o.pid).collect();
    assert_eq!(
        found,
        [302],
        "the only orphan has no pipe and matches a pattern"
    );
}

#[test]
fn a_writer_inside_the_tree_does_not_keep_it_alive() {
    let mut snap = snapshot(vec![
        with_stdin(p(400, 1, 400, "uvx mcp-server-fetch"), 11),
        p(401, 400, 400, "cat"),
        with_stdin(p(402, 1, 402, "/opt/tools/backend --serve"), 12),
    ]);
    snap.writers.insert(11, BTreeSet::from([401]));
    let Verdict::Orphan(o) = judge(&snap, 400) else {
        panic!("{:?}", judge(&snap, 400));
    };
    assert_eq!(o.reasons.len(), 3, "{:?}", o.reasons);
    assert_eq!(
        judge(&snap, 402),
        Verdict::NotServer,
        "a dead stdin pipe alone does not make a server"
    );
}

#[test]
fn only_evidence_makes_an_orphan_a_server() {
    let snap = snapshot(vec![
        p(500, 1, 500, "/usr/bin/ssh-agent"),
        p(501, 1, 501, "/usr/bin/python3 /home/u/tools/thing.py"),
    ]);
    assert_eq!(judge(&snap, 500), Verdict::NotServer);
    assert!(orphans(&snap).is_empty());
    let mut known = snap.clone();
    known.known = vec![KnownServer {
        client: "cursor".into(),
        server: "thing".into(),
        command: "python3".into(),
        args: vec!["/home/u/tools/thing.py".into()],
    }];
    let found = orphans(&known);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].client.as_deref(), Some("cursor/thing"));
}

#[test]
fn mcpshare_processes_this_one_and_other_users_are_never_listed() {
    let mut other = p(600, 1, 600, "npx @scope/server-other");
    other.uid = Some(0);
    let mut snap = snapshot(vec![
        other,
        p(601, 1, 601, "mcpshare daemon"),
        p(602, 601, 602, "npx -y @scope/server-a"),
        // Reparented out of the daemon's tree, but in a group led by its child.
        p(603, 1, 602, "node /x/node_modules/@scope/server-a/i.js"),
        p(604, 1, 604, "node /x/node_modules/@scope/server-b/i.js"),
    ]);
    snap.ours = BTreeSet::from([601]);
    assert_eq!(judge(&snap, 600), Verdict::OtherUser);
    assert_eq!(judge(&snap, 602), Verdict::Ours);
    assert_eq!(judge(&snap, 603), Verdict::Ours);
    assert_eq!(judge(&snap, 101), Verdict::Protected);
    assert_eq!(judge(&snap, 100), Verdict::Protected);
    assert_eq!(judge(&snap, 1), Verdict::OtherUser);
    assert_eq!(judge(&snap, 9999), Verdict::Gone);
    let found: Vec<u32> = orphans(&snap).iter().map(|o| o.pid).collect();
    assert_eq!(found, [604]);
}

#[test]
fn a_reused_pid_is_refused_by_its_start_time() {
    let snap = snapshot(vec![p(700, 1, 700, "uvx mcp-server-git")]);
    assert!(matches!(
        recheck_in(&snap, 700, Some(7000)),
        Verdict::Orphan(_)
    ));
    assert!(matches!(recheck_in(&snap, 700, None), Verdict::Orphan(_)));
    assert_eq!(
        recheck_in(&snap, 700, Some(6999)),
        Verdict::Reused {
            want: 6999,
            now: 7000
        }
    );
}

#[test]
fn the_users_service_manager_adopts_too() {
    let snap = snapshot(vec![
        p(800, 1, 800, "/usr/lib/systemd/systemd --user"),
        p(801, 800, 801, "uvx mcp-server-fetch"),
        p(802, 100, 100, "/usr/lib/systemd/systemd"),
        p(803, 802, 803, "uvx mcp-server-time"),
    ]);
    let Verdict::Orphan(o) = judge(&snap, 801) else {
        panic!("{:?}", judge(&snap, 801));
    };
    assert!(
        o.reasons[0].contains("service manager pid 800"),
        "{:?}",
        o.reasons
    );
    assert_eq!(judge(&snap, 803), Verdict::HasParent { parent: 802 });
}

#[test]
fn ages_and_sizes_read_well() {
    assert_eq!(human_age(45), "45s");
    assert_eq!(human_age(12 * 60 + 5), "12m");
    assert_eq!(human_age(3 * 3600 + 5 * 60), "3h05m");
    assert_eq!(human_age(2 * 86400 + 4 * 3600), "2d04h");
    assert_eq!(mib(3 << 20), "3.0 MiB");
    assert_eq!(render(&[]), "0 orphans, 0.0 MiB\n");
}
