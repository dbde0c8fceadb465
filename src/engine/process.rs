//! Who a run is: its claim token, and enough about its process (boot id, PID
//! namespace, start time) for a later run on the same host to tell whether it is
//! still alive. Where `/proc` does not say, a run is never assumed dead.

/// This process as a `send_callbacks` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub host: String,
    pub pid: u32,
    /// `boot-id/pid-namespace/start-time`; empty parts where unknown.
    pub process: String,
    /// Written into every claim: `host:pid:random`.
    pub token: String,
}

impl RunIdentity {
    pub fn current() -> RunIdentity {
        let host = read_trimmed("/proc/sys/kernel/hostname")
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "host".to_owned());
        let pid = std::process::id();
        let process = format!(
            "{}/{}/{}",
            read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            pid_namespace().unwrap_or_default(),
            start_time(pid).unwrap_or_default()
        );
        RunIdentity {
            token: format!("{host}:{pid}:{:08x}", fastrand::u32(..)),
            host,
            pid,
            process,
        }
    }

    /// Whether a run recorded as `host`, `pid`, `process` is known to be gone: it ran
    /// on this host, in this boot and PID namespace, and that pid is now free or
    /// belongs to a process that started at another time.
    pub fn knows_gone(&self, host: &str, pid: i32, process: &str) -> bool {
        let theirs: Vec<&str> = process.split('/').collect();
        let mine: Vec<&str> = self.process.split('/').collect();
        let comparable = host == self.host
            && theirs.len() == 3
            && mine.len() == 3
            && !mine[0].is_empty()
            && !mine[1].is_empty()
            && !theirs[2].is_empty()
            && theirs[0] == mine[0]
            && theirs[1] == mine[1];
        if !comparable || pid <= 0 {
            return false;
        }
        match start_time(pid as u32) {
            None => true,
            Some(started) => started != theirs[2],
        }
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_owned())
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.display().to_string())
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_not_gone_and_a_finished_one_is() {
        let me = RunIdentity::current();
        if !me.process.starts_with(|c: char| c.is_ascii_hexdigit()) {
            return; // no /proc here: nothing can be known
        }
        assert!(!me.knows_gone(&me.host, me.pid as i32, &me.process));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let parts: Vec<&str> = me.process.split('/').collect();
        let theirs = format!(
            "{}/{}/{}",
            parts[0],
            parts[1],
            start_time(pid).unwrap_or_default()
        );
        child.wait().unwrap();
        assert!(me.knows_gone(&me.host, pid as i32, &theirs));
        assert!(!me.knows_gone("another-host", pid as i32, &theirs));
    }
}
