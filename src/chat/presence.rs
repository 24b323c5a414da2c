//! Who is online: a user is online while any device holds a poll, or polled within the
//! grace period. Only real transitions are reported, so re-polls never flap.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::fast_map::FastMap;
use crate::model::UserId;

#[derive(Debug)]
struct Seen {
    held: u32,
    last_end: Instant,
}

/// Presence of every user seen since start; users never seen are offline.
#[derive(Debug, Default)]
pub struct Presence {
    users: Mutex<FastMap<UserId, Seen>>,
}

impl Presence {
    /// A poll started; true when this makes the user come online.
    pub fn poll_started(&self, user: UserId) -> bool {
        let mut users = self.users.lock();
        match users.get_mut(&user) {
            Some(seen) => {
                seen.held += 1;
                false
            }
            None => {
                users.insert(user, Seen { held: 1, last_end: Instant::now() });
                true
            }
        }
    }

    /// A poll ended (answered, superseded or dropped).
    pub fn poll_ended(&self, user: UserId) {
        if let Some(seen) = self.users.lock().get_mut(&user) {
            seen.held = seen.held.saturating_sub(1);
            seen.last_end = Instant::now();
        }
    }

    /// Whether the user is online now.
    pub fn is_online(&self, user: UserId) -> bool {
        self.users.lock().contains_key(&user)
    }

    /// Takes offline every user with no held poll for longer than `grace`; returns them.
    pub fn expire(&self, grace: Duration) -> Vec<UserId> {
        let mut gone = Vec::new();
        self.users.lock().retain(|&user, seen| {
            let online = seen.held > 0 || seen.last_end.elapsed() < grace;
            if !online {
                gone.push(user);
            }
            online
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_once_across_repolls_and_offline_only_after_the_grace() {
        let p = Presence::default();
        assert!(p.poll_started(1));
        p.poll_ended(1);
        assert!(!p.poll_started(1), "a re-poll within the grace is no new transition");
        p.poll_ended(1);
        assert!(p.expire(Duration::from_secs(60)).is_empty());
        assert!(p.is_online(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(p.expire(Duration::from_millis(1)), vec![1]);
        assert!(!p.is_online(1));
        assert!(p.expire(Duration::from_millis(1)).is_empty(), "offline is reported once");
    }

    #[test]
    fn a_held_poll_keeps_the_user_online() {
        let p = Presence::default();
        p.poll_started(2);
        std::thread::sleep(Duration::from_millis(5));
        assert!(p.expire(Duration::from_millis(1)).is_empty());
    }
}
