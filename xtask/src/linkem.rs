//! `cargo xtask linkem`: a userspace link emulator for benchmarks on kernels
//! without `sch_netem` (bench/net.sh uses `tc netem` where it can). It
//! relays TCP connections from `--listen` to `--to` and, in each direction,
//! delivers every chunk as a link of `--rate-mbit` with `--delay-ms` of
//! one-way propagation would: a chunk starts transmitting when the previous
//! one has finished, takes `bytes × 8 / rate`, and arrives `delay` later.
//!
//! Unlike netem it ends TCP at each side of the relay, so there is no slow
//! start or loss over the emulated link: bulk transfers come out a little
//! faster than over a real path with the same delay and rate. Latency-bound
//! work (one round per protocol step) is emulated faithfully.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

/// The link's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Bits per second (0: unlimited).
    pub rate_bps: u64,
}

/// Chunks in flight per direction before the reader blocks (back-pressure).
const IN_FLIGHT: usize = 2048;
const CHUNK: usize = 64 * 1024;

/// Parses `--listen A --to B --delay-ms D --rate-mbit R` and relays until
/// killed.
pub fn main(args: &[String]) -> Result<(), String> {
    let mut listen = None;
    let mut to = None;
    let mut delay_ms = 0.0f64;
    let mut rate_mbit = 0.0f64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--listen" => listen = Some(value()?),
            "--to" => to = Some(value()?),
            "--delay-ms" => delay_ms = value()?.parse().map_err(|e| format!("--delay-ms: {e}"))?,
            "--rate-mbit" => {
                rate_mbit = value()?.parse().map_err(|e| format!("--rate-mbit: {e}"))?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let (listen, to) = match (listen, to) {
        (Some(l), Some(t)) => (l, t),
        _ => {
            return Err(
                "usage: cargo xtask linkem --listen ADDR --to ADDR [--delay-ms D] [--rate-mbit R]"
                    .into(),
            );
        }
    };
    if !(delay_ms >= 0.0 && rate_mbit >= 0.0) {
        return Err("--delay-ms and --rate-mbit must not be negative".into());
    }
    let link = Link {
        delay: Duration::from_secs_f64(delay_ms / 1e3),
        rate_bps: (rate_mbit * 1e6) as u64,
    };
    let listener = TcpListener::bind(&listen).map_err(|e| format!("bind {listen}: {e}"))?;
    eprintln!("linkem {listen} -> {to}: {delay_ms} ms one way, {rate_mbit} Mbit/s (0: unlimited)");
    for client in listener.incoming() {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                eprintln!("linkem: accept: {e}");
                continue;
            }
        };
        let to = to.clone();
        thread::spawn(move || {
            if let Err(e) = relay(client, &to, link) {
                eprintln!("linkem: {e}");
            }
        });
    }
    Ok(())
}

/// Relays one connection in both directions. The far side is dialled only
/// once the client has sent something, so a port probe that connects and
/// closes never reaches it (party 1 of `hush bench` takes the first
/// connection it gets as party 0's).
pub fn relay(mut client: TcpStream, to: &str, link: Link) -> Result<(), String> {
    let mut first = vec![0u8; CHUNK];
    let n = client.read(&mut first).map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(());
    }
    first.truncate(n);
    let server = TcpStream::connect(to).map_err(|e| format!("connect {to}: {e}"))?;
    for s in [&client, &server] {
        s.set_nodelay(true).map_err(|e| e.to_string())?;
    }
    let pumps = [
        pump(clone(&client)?, clone(&server)?, link, first),
        pump(server, client, link, Vec::new()),
    ];
    for p in pumps {
        for h in p {
            let _ = h.join();
        }
    }
    Ok(())
}

fn clone(s: &TcpStream) -> Result<TcpStream, String> {
    s.try_clone().map_err(|e| e.to_string())
}

/// One direction: a reader that stamps chunks with their arrival time and a
/// writer that delivers them then.
fn pump(from: TcpStream, to: TcpStream, link: Link, first: Vec<u8>) -> [thread::JoinHandle<()>; 2] {
    let (tx, rx) = sync_channel::<Option<(Instant, Vec<u8>)>>(IN_FLIGHT);
    [
        thread::spawn(move || read_side(from, tx, link, first)),
        thread::spawn(move || write_side(to, rx)),
    ]
}

fn read_side(
    mut from: TcpStream,
    tx: SyncSender<Option<(Instant, Vec<u8>)>>,
    link: Link,
    first: Vec<u8>,
) {
    let mut busy_until = Instant::now();
    let mut pending = (!first.is_empty()).then_some(first);
    loop {
        let buf = match pending.take() {
            Some(b) => b,
            None => {
                let mut buf = vec![0u8; CHUNK];
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.truncate(n),
                }
                buf
            }
        };
        let n = buf.len();
        let now = Instant::now();
        let start = busy_until.max(now);
        let transmit = if link.rate_bps == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(n as f64 * 8.0 / link.rate_bps as f64)
        };
        busy_until = start + transmit;
        if tx.send(Some((busy_until + link.delay, buf))).is_err() {
            break;
        }
    }
    let _ = tx.send(None);
}

fn write_side(mut to: TcpStream, rx: Receiver<Option<(Instant, Vec<u8>)>>) {
    while let Ok(Some((at, buf))) = rx.recv() {
        let now = Instant::now();
        if at > now {
            thread::sleep(at - now);
        }
        if to.write_all(&buf).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip through two relayed directions takes twice the delay,
    /// and a bulk transfer takes about bytes × 8 / rate.
    #[test]
    fn delays_and_paces() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let echo_addr = echo.local_addr().unwrap().to_string();
        thread::spawn(move || {
            for s in echo.incoming() {
                let mut s = s.unwrap();
                thread::spawn(move || {
                    let mut r = s.try_clone().unwrap();
                    let _ = std::io::copy(&mut r, &mut s);
                });
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        let link = Link {
            delay: Duration::from_millis(20),
            rate_bps: 80_000_000,
        };
        thread::spawn(move || {
            for c in front.incoming() {
                let to = echo_addr.clone();
                thread::spawn(move || relay(c.unwrap(), &to, link));
            }
        });
        let mut s = TcpStream::connect(front_addr).unwrap();
        s.set_nodelay(true).unwrap();
        let t = Instant::now();
        s.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).unwrap();
        let rtt = t.elapsed();
        assert_eq!(&got, b"ping");
        assert!(rtt >= Duration::from_millis(40), "round trip {rtt:?}");
        // 1 MB each way at 80 Mbit/s: at least 100 ms of transmission.
        let data = vec![7u8; 1_000_000];
        let mut reader = s.try_clone().unwrap();
        let t = Instant::now();
        let back = thread::spawn(move || {
            let mut v = vec![0u8; 1_000_000];
            reader.read_exact(&mut v).unwrap();
            v
        });
        s.write_all(&data).unwrap();
        assert_eq!(back.join().unwrap(), data);
        assert!(
            t.elapsed() >= Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
    }
}
