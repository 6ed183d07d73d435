//! Background processes that `infra up` starts: pidfiles, liveness, readiness waits, stopping.

use super::state::StateDir;
use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a pidfile says: the process id and the program it must be running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidRecord {
    pub pid: u32,
    pub program: String,
}

impl PidRecord {
    /// The pidfile line: `<pid> <program>`.
    pub fn render(&self) -> String {
        format!("{} {}\n", self.pid, self.program)
    }

    /// Parses a pidfile; `None` when it is not one infra wrote.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok().filter(|pid| *pid > 1)?;
        let program = words.next()?.to_string();
        words.next().is_none().then_some(Self { pid, program })
    }
}

/// The state of a component's process as its pidfile and `/proc` tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The pidfile names a live process running the recorded program.
    Running(u32),
    /// The pidfile exists but its process is gone (or the pid now belongs to another program).
    Stale,
    /// No pidfile: infra did not start this component.
    Absent,
}

pub fn liveness(state: &StateDir, component: &str) -> Liveness {
    let Ok(text) = std::fs::read_to_string(state.pidfile(component)) else {
        return Liveness::Absent;
    };
    match PidRecord::parse(&text) {
        Some(record) if runs_program(record.pid, &record.program) => Liveness::Running(record.pid),
        _ => Liveness::Stale,
    }
}

/// True when `pid` is alive (not a zombie) and its executable is named `program`.
fn runs_program(pid: u32, program: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    if proc_state(&stat) == Some('Z') {
        return false;
    }
    // The executable, not argv[0]: servers such as redis rewrite their command line.
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    exe_name(&exe.to_string_lossy()) == program
}

/// The file name of a `/proc/<pid>/exe` target, without the ` (deleted)` the kernel appends
/// when the binary was replaced on disk (as a rebuilt cached binary is).
fn exe_name(target: &str) -> &str {
    let target = target.strip_suffix(" (deleted)").unwrap_or(target);
    target.rsplit('/').next().unwrap_or(target)
}

/// The state letter of `/proc/<pid>/stat` (the field after the parenthesised command name).
fn proc_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Starts `command` detached from xtask (own process group, output appended to the
/// component's log) and records its pid.
pub fn spawn(state: &StateDir, component: &str, command: Command) -> anyhow::Result<u32> {
    // Canonical, because the kernel reports the resolved executable (Debian's redis-server
    // is a symlink to redis-check-rdb).
    let path = Path::new(command.get_program());
    let program = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .file_name()
        .and_then(|n| n.to_str())
        .context("program without a file name")?
        .to_string();
    spawn_named(state, component, &program, command)
}

/// Like [`spawn`], for a command that execs `program` (e.g. through `setpriv`).
pub fn spawn_named(
    state: &StateDir,
    component: &str,
    program: &str,
    mut command: Command,
) -> anyhow::Result<u32> {
    let log_path = state.log(component);
    state.dir("log")?;
    state.dir("run")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let child = command
        .spawn()
        .with_context(|| format!("starting {component} ({program})"))?;
    let record = PidRecord {
        pid: child.id(),
        program: program.to_string(),
    };
    std::fs::write(state.pidfile(component), record.render())?;
    Ok(record.pid)
}

/// Descriptors this process inherited, other than stdio, that a program it starts would
/// inherit in turn: those without close-on-exec. Rust opens its own files close-on-exec;
/// `flock LOCKFILE cargo …` hands its lock down without the flag.
pub fn inherited_descriptors() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fdinfo") else {
        return Vec::new();
    };
    let mut fds: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .filter(|fd| {
            std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
                .ok()
                .and_then(|info| fdinfo_flags(&info))
                .is_some_and(|flags| flags & O_CLOEXEC == 0)
        })
        .collect();
    fds.sort_unstable();
    fds
}

/// `O_CLOEXEC` as `/proc/<pid>/fdinfo` shows it (the `flags:` field, in octal).
const O_CLOEXEC: u32 = 0o2_000_000;

/// The `flags:` field of a `/proc/<pid>/fdinfo/<fd>` file.
fn fdinfo_flags(info: &str) -> Option<u32> {
    let flags = info.lines().find_map(|line| line.strip_prefix("flags:"))?;
    u32::from_str_radix(flags.trim(), 8).ok()
}

/// `command`, run through bash so that it starts without the descriptors `fds` (open in
/// this process, not close-on-exec). `exec` keeps the pid: the program replaces the shell.
pub fn without_descriptors(command: &Command, fds: &[u32]) -> Command {
    let closes: String = fds.iter().map(|fd| format!(" {fd}>&-")).collect();
    let mut wrapped = Command::new("bash");
    wrapped
        .arg("-c")
        .arg(format!("exec \"$0\" \"$@\"{closes}"))
        .arg(command.get_program())
        .args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// Runs this xtask again without the descriptors it inherited, when it has any: the daemons
/// `infra up` starts (and a test restarts) outlive it, and one that held the lock file of
/// `flock LOCKFILE cargo test` kept every other run waiting until `infra reset`. Returns
/// only when there is nothing to shed (or the shell could not be started).
pub fn shed_inherited_descriptors() -> anyhow::Result<()> {
    let fds = inherited_descriptors();
    if fds.is_empty() {
        return Ok(());
    }
    let mut again = Command::new(std::env::current_exe().context("locating xtask")?);
    again.args(std::env::args_os().skip(1));
    let error = without_descriptors(&again, &fds).exec();
    Err(error).context("running xtask again without its inherited descriptors")
}

/// Stops the component infra started (SIGTERM, then SIGKILL after `grace`) and removes its
/// pidfile. Returns whether a process was stopped; a missing or stale pidfile is not an error.
pub fn stop(state: &StateDir, component: &str, grace: Duration) -> anyhow::Result<bool> {
    stop_with(state, component, Signal::TERM, grace)
}

/// Like [`stop`], with the signal the program treats as "shut down now".
pub fn stop_with(
    state: &StateDir,
    component: &str,
    first_signal: Signal,
    grace: Duration,
) -> anyhow::Result<bool> {
    let pidfile = state.pidfile(component);
    let stopped = match liveness(state, component) {
        Liveness::Running(pid) => {
            signal(pid, first_signal)?;
            let deadline = Instant::now() + grace;
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if alive(pid) {
                eprintln!(
                    "infra: {component} (pid {pid}) ignored {first_signal:?} for {grace:?}; sending SIGKILL"
                );
                signal(pid, Signal::KILL)?;
                wait_for(
                    &format!("{component} to exit"),
                    Duration::from_secs(10),
                    || Ok(!alive(pid)),
                )?;
            }
            true
        }
        Liveness::Stale | Liveness::Absent => false,
    };
    if pidfile.exists() {
        std::fs::remove_file(&pidfile)
            .with_context(|| format!("removing {}", pidfile.display()))?;
    }
    Ok(stopped)
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| proc_state(&stat) != Some('Z'))
        .unwrap_or(false)
}

fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        bail!("{pid} is not a process id");
    };
    match kill_process(target, signal) {
        // Gone already: what the caller wanted.
        Err(e) if e == rustix::io::Errno::SRCH => Ok(()),
        Err(e) if alive(pid) => bail!("sending {signal:?} to {pid} failed: {e}"),
        _ => Ok(()),
    }
}

/// A long-running component `up` keeps running: started when absent, restarted when its
/// command line changed or it stopped answering, left alone when healthy.
pub struct Service<'a> {
    pub component: &'a str,
    /// The loopback address it listens on; someone else listening there is reported.
    pub addr: &'a str,
    pub command: Command,
    pub ready: &'a dyn Fn() -> bool,
    pub start_timeout: Duration,
}

impl Service<'_> {
    pub fn ensure(self, state: &StateDir) -> anyhow::Result<()> {
        let component = self.component;
        let fingerprint = format!("{:?}\n", self.command);
        let fingerprint_path = state.join("run").join(format!("{component}.cmd"));
        let same = std::fs::read_to_string(&fingerprint_path).ok().as_deref() == Some(&fingerprint);
        match liveness(state, component) {
            Liveness::Running(pid) if same && (self.ready)() => {
                eprintln!("infra: {component:<25} up   {} (pid {pid})", self.addr);
                return Ok(());
            }
            Liveness::Running(pid) => {
                let why = if same {
                    "does not answer"
                } else {
                    "runs with an old command line"
                };
                eprintln!("infra: {component:<25} pid {pid} {why}; restarting it");
                stop(state, component, Duration::from_secs(20))?;
            }
            Liveness::Stale => {
                eprintln!("infra: {component:<25} stale pidfile (process gone); starting it");
                stop(state, component, Duration::from_secs(1))?;
            }
            Liveness::Absent => {}
        }
        if port_open(self.addr) {
            return Err(busy_port(self.addr, component));
        }
        let started = Instant::now();
        let pid = spawn(state, component, self.command)?;
        std::fs::write(&fingerprint_path, fingerprint)?;
        wait_started(state, component, self.start_timeout, || Ok((self.ready)()))?;
        eprintln!(
            "infra: {component:<25} up   {} (started, pid {pid}, ready in {:.1}s)",
            self.addr,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// The error for a port someone else listens on, naming the listener when `ss` can tell.
pub fn busy_port(addr: &str, component: &str) -> anyhow::Error {
    let port = addr.rsplit(':').next().unwrap_or_default();
    let holder = Command::new("ss")
        .args(["-ltnpH", &format!("sport = :{port}")])
        .output()
        .ok()
        .and_then(|out| listener_pid(&String::from_utf8_lossy(&out.stdout)));
    let Some(pid) = holder else {
        return anyhow::anyhow!(
            "{addr} (for {component}) is taken by a process infra did not start; find it with \
             `ss -ltnp 'sport = :{port}'`, stop it, then run `cargo xtask infra up` again"
        );
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let earlier_infra = cmdline.contains("/wactl/") || cmdline.contains("wactl-infra");
    let hint = if earlier_infra {
        "it looks like an earlier `infra up` whose state dir was removed or moved, so `down` \
         cannot find it"
    } else {
        "infra did not start it"
    };
    anyhow::anyhow!(
        "{addr} (for {component}) is taken by pid {pid} (`{cmdline}`); {hint}. Stop it \
         (`kill {pid}`), then run `cargo xtask infra up` again"
    )
}

/// The pid in `ss -ltnpH` output (`users:(("etcd",pid=123,fd=7))`).
fn listener_pid(ss: &str) -> Option<u32> {
    let rest = ss.split("pid=").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// True when something accepts TCP connections on `addr` (a loopback address).
pub fn port_open(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .ok()
        .and_then(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok())
        .is_some()
}

/// Polls `ready` until it says yes, failing after `timeout`. Used only while a process we
/// just started comes up, where there is nothing to watch yet.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for a component we started; when its process dies first, says so and shows the
/// end of its log instead of waiting out the timeout.
pub fn wait_started(
    state: &StateDir,
    component: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    wait_for(&format!("{component} to become ready"), timeout, || {
        if ready()? {
            return Ok(true);
        }
        if liveness(state, component) == Liveness::Stale {
            bail!(
                "{component} exited during start-up; last lines of {}:\n{}",
                state.log(component).display(),
                log_tail(&state.log(component), 15)
            );
        }
        Ok(false)
    })
    .with_context(|| {
        format!(
            "starting {component} (log: {})",
            state.log(component).display()
        )
    })
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The failure this guards against: `flock LOCK cargo test` passes its lock descriptor
    /// down, and a daemon restarted by a test kept it open for as long as it ran.
    #[test]
    fn a_program_started_without_inherited_descriptors_does_not_hold_them() {
        use std::os::fd::{AsFd, AsRawFd};
        let dir = tempfile::tempdir().expect("tempdir");
        let held = dir.path().join("held.lock");
        let file = std::fs::File::create(&held).expect("create");
        // What flock(1) does with the lock it hands to its command.
        rustix::io::fcntl_setfd(file.as_fd(), rustix::io::FdFlags::empty()).expect("clear CLOEXEC");
        let fd = file.as_raw_fd() as u32;
        let fds = inherited_descriptors();
        assert!(fds.contains(&fd), "fd {fd} not found among {fds:?}");

        let open_in = |command: &mut Command| -> Vec<PathBuf> {
            let out = command
                .args(["-c", "ls -l /proc/$$/fd"])
                .output()
                .expect("run sh");
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|line| line.split_once(" -> ").map(|(_, to)| PathBuf::from(to)))
                .collect()
        };
        // The check can fail: a plain child does hold the file.
        assert!(open_in(&mut Command::new("sh")).contains(&held));
        let open = open_in(&mut without_descriptors(&Command::new("sh"), &fds));
        assert!(!open.is_empty(), "the shell has at least its stdio open");
        assert!(
            !open.contains(&held),
            "{} still open: {open:?}",
            held.display()
        );
    }

    #[test]
    fn fdinfo_flags_are_octal() {
        let info = "pos:\t0\nflags:\t02100002\nmnt_id:\t30\n";
        assert_eq!(fdinfo_flags(info), Some(0o2100002));
        assert_ne!(fdinfo_flags(info).unwrap() & O_CLOEXEC, 0);
        assert_eq!(fdinfo_flags("pos:\t0\n"), None);
    }

    #[test]
    fn pid_record_round_trips() {
        let record = PidRecord {
            pid: 4242,
            program: "etcd".into(),
        };
        assert_eq!(PidRecord::parse(&record.render()), Some(record));
    }

    #[test]
    fn pid_record_rejects_foreign_or_broken_files() {
        assert_eq!(PidRecord::parse(""), None);
        assert_eq!(
            PidRecord::parse("4242\n"),
            None,
            "a bare pid is not one of ours"
        );
        assert_eq!(PidRecord::parse("abc etcd"), None);
        assert_eq!(PidRecord::parse("1 init"), None, "never signal init");
        assert_eq!(PidRecord::parse("12 etcd extra"), None);
    }

    #[test]
    fn listener_pid_is_read_from_ss_output() {
        let line =
            "LISTEN 0 4096 127.0.0.1:5000 0.0.0.0:* users:((\"docker-registry\",pid=7063,fd=3))\n";
        assert_eq!(listener_pid(line), Some(7063));
        assert_eq!(listener_pid(""), None);
    }

    #[test]
    fn exe_name_ignores_directory_and_deleted_marker() {
        assert_eq!(exe_name("/usr/bin/redis-server"), "redis-server");
        assert_eq!(
            exe_name("/root/.cache/wactl/bin/etcd-v3.6.16 (deleted)"),
            "etcd-v3.6.16"
        );
    }

    #[test]
    fn proc_state_skips_command_names_with_spaces_and_parens() {
        assert_eq!(proc_state("123 (kube (x) y) S 1 2 3"), Some('S'));
        assert_eq!(proc_state("9 (redis-server) Z 1"), Some('Z'));
        assert_eq!(proc_state("garbage"), None);
    }

    #[test]
    fn stale_and_absent_pidfiles_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("wactl-infra-test-{}", std::process::id()));
        let state = StateDir::at(dir.clone());
        assert_eq!(liveness(&state, "ghost"), Liveness::Absent);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        // pid_max is far below this, so the pid cannot be alive.
        std::fs::write(state.pidfile("ghost"), "999999999 ghost\n").unwrap();
        assert_eq!(liveness(&state, "ghost"), Liveness::Stale);
        assert!(!stop(&state, "ghost", Duration::from_millis(10)).unwrap());
        assert!(
            !state.pidfile("ghost").exists(),
            "stop removes a stale pidfile"
        );
        assert!(
            !stop(&state, "ghost", Duration::from_millis(10)).unwrap(),
            "safe twice"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_started_process_is_running_then_stopped() {
        let dir = std::env::temp_dir().join(format!("wactl-infra-spawn-{}", std::process::id()));
        let state = StateDir::at(dir.clone());
        let mut sleep = Command::new("sleep");
        sleep.arg("30");
        let pid = spawn(&state, "sleeper", sleep).unwrap();
        assert_eq!(liveness(&state, "sleeper"), Liveness::Running(pid));
        assert!(stop(&state, "sleeper", Duration::from_secs(5)).unwrap());
        assert_eq!(liveness(&state, "sleeper"), Liveness::Absent);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
