//! Integration tests of the `hbcp` binary, in one test binary with a module per area.
//! Case names read like the command lines they run.

mod util;

mod azure_auth;
mod backup;
mod bad_input;
mod bandwidth;
mod bench_path;
mod closed_stderr;
mod cloud;
mod clouds;
mod copy_local;
mod crash;
mod disk_full;
mod docs;
mod dry_run;
mod estimate;
mod extras;
mod faultproxy;
mod faults;
mod hbase_checks;
mod hostile_keys;
mod jobs;
mod k8s_hadoop;
mod left_out;
mod logging;
mod plan_run;
mod preflight;
mod put_md5;
mod report_html;
mod retry_status;
mod s2s;
mod s2s_changed;
mod select;
mod shards;
mod signals;
mod sync;
mod target_changed;
mod target_lock;
mod transport;
mod verify_listed;
mod verify_local;
mod verify_ways;
mod view;
mod wasb;
