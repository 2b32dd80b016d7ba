//! perf_event_open on tracepoints, and the ring buffers their samples land
//! in: one mmap'd ring per CPU shared by every event on that CPU.
//!
//! Hand-written rather than taken from the perf-event2 crate because
//! precision mode needs what that crate does not give: several events
//! multiplexed into one ring per CPU (PERF_EVENT_IOC_SET_OUTPUT, so memory
//! does not grow with the number of events), samples told apart by
//! PERF_SAMPLE_IDENTIFIER, raw payloads read in place without a copy per
//! sample, PERF_RECORD_LOST counted, and CLOCK_MONOTONIC timestamps that
//! compare with the poll loop's clock. The record walk is a pure function
//! over the ring's bytes ([`walk`]) and is tested without a kernel; the
//! unsafe syscalls of `trace` sit in this module alone, each `unsafe` with
//! its reason (a `// SAFETY:` line).

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustc_hash::FxHashMap;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PerfError {
    #[error("perf_event_open({event}) not permitted: {source} (needs root, CAP_PERFMON or CAP_SYS_ADMIN; or kernel.perf_event_paranoid=-1)")]
    Permission { event: String, source: io::Error },
    #[error("perf_event_open({event}) not supported by this kernel: {source}")]
    Unsupported { event: String, source: io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

#[derive(Debug, Clone, Copy)]
pub struct RingOptions {
    /// Data pages per CPU (a power of two).
    pub pages_per_cpu: usize,
    /// Bytes in a ring before its reader is woken.
    pub watermark_bytes: u32,
}

/// One sample as the ring holds it.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The caller's tag for the event.
    pub tag: u32,
    pub cpu: u32,
    pub pid: u32,
    pub tid: u32,
    /// CLOCK_MONOTONIC, ns.
    pub time_ns: u64,
    /// The tracepoint record, from `common_type` on.
    pub raw: &'a [u8],
}

const PERF_TYPE_TRACEPOINT: u32 = 2;
const SAMPLE_TID: u64 = 1 << 1;
const SAMPLE_TIME: u64 = 1 << 2;
const SAMPLE_CPU: u64 = 1 << 7;
const SAMPLE_RAW: u64 = 1 << 10;
const SAMPLE_IDENTIFIER: u64 = 1 << 16;
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_WATERMARK: u64 = 1 << 14;
const FLAG_USE_CLOCKID: u64 = 1 << 25;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const IOC_ENABLE: libc::c_ulong = 0x2400;
const IOC_DISABLE: libc::c_ulong = 0x2401;
const IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;
const IOC_SET_OUTPUT: libc::c_ulong = 0x2405;
const IOC_ID: libc::c_ulong = 0x8008_2407;
const RECORD_LOST: u32 = 2;
const RECORD_SAMPLE: u32 = 9;
/// Offsets in struct perf_event_mmap_page.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;

/// struct perf_event_attr as of PERF_ATTR_SIZE_VER5 (Linux 4.1+ fields).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_watermark: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 112);

/// One CPU's ring: the mmap'd header page and data pages.
struct Ring {
    base: *mut u8,
    map_len: usize,
    data_offset: usize,
    data_size: usize,
    /// The fd that owns the mapping; the other events' fds write into it.
    owner: RawFd,
    /// The CPU whose events write into it.
    cpu: u32,
}

pub struct PerfRings {
    rings: Vec<Ring>,
    fds: Vec<OwnedFd>,
    /// The tag of each fd in `fds`.
    fd_tags: Vec<u32>,
    /// The ring (index in `rings`) each fd in `fds` writes into.
    fd_rings: Vec<usize>,
    /// Per tag: its tracepoint id and name, to open it again
    /// ([`PerfRings::refilter_tag`]).
    tracepoints: FxHashMap<u32, (u64, String)>,
    watermark_bytes: u32,
    /// Sample ids of events replaced by the last refilter: their samples
    /// may still sit in a ring until the next drain, so they are
    /// forgotten at the refilter after it.
    retiring: Vec<u64>,
    /// What replaced events had counted when they were closed.
    retired_counted: u64,
    /// Tags [`PerfRings::enable`] leaves off: turned on by
    /// [`PerfRings::refilter_tag`] when wanted.
    deferred: rustc_hash::FxHashSet<u32>,
    epoll: OwnedFd,
    tags: FxHashMap<u64, u32>,
    lost: u64,
    malformed: u64,
    /// Samples read since the start.
    samples: u64,
    /// The most events the kernel counted that no ring ever held (see
    /// [`PerfRings::check_delivery`]).
    undelivered: u64,
    scratch: Vec<u8>,
}

// SAFETY: the rings are plain shared memory owned by this value; nothing
// else in the process holds their pointers.
unsafe impl Send for PerfRings {}

impl Drop for PerfRings {
    fn drop(&mut self) {
        for ring in &self.rings {
            // SAFETY: base/map_len are exactly what mmap returned; the
            // mapping is not used after this.
            unsafe {
                libc::munmap(ring.base.cast(), ring.map_len);
            }
        }
    }
}

/// CLOCK_MONOTONIC now, in ns: the clock samples are stamped with.
pub fn monotonic_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write into.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn online_cpus() -> Vec<u32> {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
            cpus.extend(a..=b);
        }
    }
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}

fn open_error(event: &str, source: io::Error) -> PerfError {
    let event = event.to_string();
    match source.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => PerfError::Permission { event, source },
        Some(libc::ENOENT | libc::ENODEV | libc::EINVAL | libc::EOPNOTSUPP) => {
            PerfError::Unsupported { event, source }
        }
        _ => PerfError::Io {
            what: format!("perf_event_open({event})"),
            source,
        },
    }
}

fn ioctl(
    fd: RawFd,
    request: libc::c_ulong,
    arg: libc::c_ulong,
    what: &str,
) -> Result<(), PerfError> {
    // SAFETY: fd is an open perf event; the requests used take an integer
    // argument (ENABLE, DISABLE, SET_OUTPUT).
    let rc = unsafe { libc::ioctl(fd, request as _, arg) };
    if rc < 0 {
        return Err(PerfError::Io {
            what: what.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

impl PerfRings {
    /// Opens every event (tracepoint id, tag, name) on every online CPU,
    /// disabled until [`PerfRings::enable`].
    pub fn open(
        events: &[(u64, u32, String)],
        options: RingOptions,
    ) -> Result<PerfRings, PerfError> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let pages = options.pages_per_cpu.max(1).next_power_of_two();
        // SAFETY: epoll_create1 has no preconditions; the fd is owned below.
        let epoll_fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll_fd < 0 {
            return Err(PerfError::Io {
                what: "epoll_create1".into(),
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: epoll_fd is a fresh fd nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll_fd) };
        let mut rings_out = PerfRings {
            rings: Vec::new(),
            fds: Vec::new(),
            fd_tags: Vec::new(),
            fd_rings: Vec::new(),
            tracepoints: FxHashMap::default(),
            watermark_bytes: options.watermark_bytes.max(1),
            retiring: Vec::new(),
            retired_counted: 0,
            deferred: Default::default(),
            epoll,
            tags: FxHashMap::default(),
            lost: 0,
            malformed: 0,
            samples: 0,
            undelivered: 0,
            scratch: Vec::new(),
        };
        for (id, tag, name) in events {
            rings_out.tracepoints.insert(*tag, (*id, name.clone()));
        }
        for cpu in online_cpus() {
            let mut owner: Option<RawFd> = None;
            for (id, tag, name) in events {
                let (fd, sample_id) = rings_out.open_event(*id, cpu, name)?;
                let raw_fd = fd.as_raw_fd();
                rings_out.tags.insert(sample_id, *tag);
                match owner {
                    Some(ring_fd) => ioctl(
                        raw_fd,
                        IOC_SET_OUTPUT,
                        ring_fd as libc::c_ulong,
                        &format!("PERF_EVENT_IOC_SET_OUTPUT({name})"),
                    )?,
                    None => {
                        rings_out.map_ring(raw_fd, cpu, page, pages, name)?;
                        owner = Some(raw_fd);
                    }
                }
                rings_out.fds.push(fd);
                rings_out.fd_tags.push(*tag);
                rings_out.fd_rings.push(rings_out.rings.len() - 1);
            }
        }
        Ok(rings_out)
    }

    /// Opens tracepoint `id` on `cpu`, disabled, sampling into whatever
    /// ring it is then pointed at; with its sample id.
    fn open_event(&self, id: u64, cpu: u32, name: &str) -> Result<(OwnedFd, u64), PerfError> {
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: id,
            sample_period: 1,
            sample_type: SAMPLE_IDENTIFIER | SAMPLE_TID | SAMPLE_TIME | SAMPLE_CPU | SAMPLE_RAW,
            flags: FLAG_DISABLED | FLAG_WATERMARK | FLAG_USE_CLOCKID,
            wakeup_watermark: self.watermark_bytes,
            clockid: libc::CLOCK_MONOTONIC,
            ..PerfEventAttr::default()
        };
        // SAFETY: attr is a valid perf_event_attr of the size it
        // states; pid -1 with a cpu means every task on that cpu.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                -1 as libc::pid_t,
                cpu as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(open_error(name, io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let mut sample_id: u64 = 0;
        // SAFETY: PERF_EVENT_IOC_ID writes one u64 to the pointer.
        if unsafe { libc::ioctl(fd.as_raw_fd(), IOC_ID as _, &mut sample_id as *mut u64) } < 0 {
            return Err(PerfError::Io {
                what: format!("PERF_EVENT_IOC_ID({name})"),
                source: io::Error::last_os_error(),
            });
        }
        Ok((fd, sample_id))
    }

    fn map_ring(
        &mut self,
        fd: RawFd,
        cpu: u32,
        page: usize,
        pages: usize,
        name: &str,
    ) -> Result<(), PerfError> {
        let map_len = page * (pages + 1);
        // SAFETY: a shared read-write mapping of a perf event fd of 1+2^n
        // pages is what the perf ABI defines; the result is checked.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(PerfError::Io {
                what: format!("mmap of the {name} ring ({map_len} bytes; lower --ring-pages?)"),
                source: io::Error::last_os_error(),
            });
        }
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: self.rings.len() as u64,
        };
        // SAFETY: both fds are open; event is a valid epoll_event.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) }
            < 0
        {
            // SAFETY: the mapping was just made and is not used elsewhere.
            unsafe { libc::munmap(base, map_len) };
            return Err(PerfError::Io {
                what: "epoll_ctl".into(),
                source: io::Error::last_os_error(),
            });
        }
        self.rings.push(Ring {
            base: base.cast(),
            map_len,
            data_offset: page,
            data_size: page * pages,
            owner: fd,
            cpu,
        });
        Ok(())
    }

    /// Starts every event but the deferred ones.
    pub fn enable(&self) -> Result<(), PerfError> {
        for (fd, tag) in self.fds.iter().zip(&self.fd_tags) {
            if !self.deferred.contains(tag) {
                ioctl(fd.as_raw_fd(), IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")?;
            }
        }
        Ok(())
    }

    /// Leaves event `tag` off at [`PerfRings::enable`].
    pub fn defer(&mut self, tag: u32) {
        self.deferred.insert(tag);
    }

    /// Turns event `tag` on with the tracefs filter expression `filter`,
    /// or off (None), on every CPU. A filter is taken once per event: to
    /// change it, [`PerfRings::refilter_tag`].
    pub fn filter_tag(&self, tag: u32, filter: Option<&str>) -> Result<(), PerfError> {
        let expression = match filter {
            Some(f) => Some(std::ffi::CString::new(f).map_err(|_| PerfError::Io {
                what: "PERF_EVENT_IOC_SET_FILTER".into(),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            })?),
            None => None,
        };
        for (fd, _) in self
            .fds
            .iter()
            .zip(&self.fd_tags)
            .filter(|(_, t)| **t == tag)
        {
            let raw = fd.as_raw_fd();
            match &expression {
                Some(text) => {
                    // SAFETY: SET_FILTER reads a NUL-terminated string from
                    // the pointer, which `text` keeps alive for the call.
                    let rc = unsafe { libc::ioctl(raw, IOC_SET_FILTER as _, text.as_ptr()) };
                    if rc < 0 {
                        return Err(PerfError::Io {
                            what: "PERF_EVENT_IOC_SET_FILTER".into(),
                            source: io::Error::last_os_error(),
                        });
                    }
                    ioctl(raw, IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")?;
                }
                None => ioctl(raw, IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")?,
            }
        }
        Ok(())
    }

    /// Replaces event `tag` on every CPU by a new one filtered by the
    /// tracefs expression `filter`, and turns it on. The kernel takes a
    /// perf event's filter once (a second PERF_EVENT_IOC_SET_FILTER is
    /// EEXIST), so a filter that changes needs new events. The new ones are
    /// on before the old ones close: an event both filters pass is read
    /// twice rather than missed. Samples the old ones left in the rings are
    /// still read at the next drain. On an error the old events stay.
    pub fn refilter_tag(&mut self, tag: u32, filter: &str) -> Result<(), PerfError> {
        let expression = std::ffi::CString::new(filter).map_err(|_| PerfError::Io {
            what: "PERF_EVENT_IOC_SET_FILTER".into(),
            source: io::Error::from(io::ErrorKind::InvalidInput),
        })?;
        let (id, name) = self
            .tracepoints
            .get(&tag)
            .cloned()
            .ok_or_else(|| PerfError::Io {
                what: format!("refilter of event {tag}"),
                source: io::Error::from(io::ErrorKind::NotFound),
            })?;
        let at: Vec<usize> = (0..self.fds.len())
            .filter(|i| self.fd_tags[*i] == tag)
            .collect();
        let mut fresh = Vec::with_capacity(at.len());
        for &i in &at {
            let ring = &self.rings[self.fd_rings[i]];
            if ring.owner == self.fds[i].as_raw_fd() {
                // Closing it would take its CPU's ring with it.
                return Err(PerfError::Io {
                    what: format!("refilter of {name}"),
                    source: io::Error::from(io::ErrorKind::Unsupported),
                });
            }
            let (fd, sample_id) = self.open_event(id, ring.cpu, &name)?;
            let raw = fd.as_raw_fd();
            ioctl(
                raw,
                IOC_SET_OUTPUT,
                ring.owner as libc::c_ulong,
                &format!("PERF_EVENT_IOC_SET_OUTPUT({name})"),
            )?;
            // SAFETY: SET_FILTER reads a NUL-terminated string from the
            // pointer, which `expression` keeps alive for the call.
            if unsafe { libc::ioctl(raw, IOC_SET_FILTER as _, expression.as_ptr()) } < 0 {
                return Err(PerfError::Io {
                    what: "PERF_EVENT_IOC_SET_FILTER".into(),
                    source: io::Error::last_os_error(),
                });
            }
            fresh.push((i, fd, sample_id));
        }
        // A drain has read what the events retired last time left.
        for old in std::mem::take(&mut self.retiring) {
            self.tags.remove(&old);
        }
        for (_, fd, sample_id) in &fresh {
            self.tags.insert(*sample_id, tag);
            ioctl(fd.as_raw_fd(), IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")?;
        }
        for (i, fd, _) in fresh {
            let old = std::mem::replace(&mut self.fds[i], fd);
            // Off first, so that what it counted is all it will write.
            let _ = ioctl(old.as_raw_fd(), IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE");
            self.retired_counted += count_of(&old).unwrap_or(0);
            let mut old_id: u64 = 0;
            // SAFETY: PERF_EVENT_IOC_ID writes one u64 to the pointer.
            if unsafe { libc::ioctl(old.as_raw_fd(), IOC_ID as _, &mut old_id as *mut u64) } == 0 {
                self.retiring.push(old_id);
            }
        }
        Ok(())
    }

    /// Sleeps until some ring passed its watermark (true) or `timeout`.
    pub fn wait(&self, timeout: Duration) -> Result<bool, PerfError> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: events is a writable array of the length passed.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                millis,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(PerfError::Io {
                what: "epoll_wait".into(),
                source: err,
            });
        }
        Ok(n > 0)
    }

    /// Reads every ring to its head, handing each sample to `f`.
    pub fn drain(&mut self, f: &mut dyn FnMut(&Sample<'_>)) -> usize {
        let mut samples = 0;
        for ring in &self.rings {
            // SAFETY: DATA_HEAD/DATA_TAIL lie in the mapped header page and
            // are 8-byte aligned u64s the kernel and this reader share.
            let (head_ref, tail_ref) = unsafe {
                (
                    &*(ring.base.add(DATA_HEAD) as *const AtomicU64),
                    &*(ring.base.add(DATA_TAIL) as *const AtomicU64),
                )
            };
            let head = head_ref.load(Ordering::Acquire);
            let tail = tail_ref.load(Ordering::Relaxed);
            if head == tail {
                continue;
            }
            // SAFETY: the data area is data_size bytes after data_offset in
            // the mapping; the kernel does not write between tail and head
            // until data_tail moves.
            let data = unsafe {
                std::slice::from_raw_parts(ring.base.add(ring.data_offset), ring.data_size)
            };
            let walked = walk(data, tail, head, &mut self.scratch, &self.tags, f);
            samples += walked.samples;
            self.lost += walked.lost;
            self.malformed += walked.malformed;
            tail_ref.store(head, Ordering::Release);
            let _ = ring.owner;
        }
        self.samples += samples as u64;
        samples
    }

    /// Events the kernel dropped for a full ring, since the start.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Every event counts on its perf event as it fires, whether or not a
    /// sample of it then reaches the ring (some kernels drop samples of
    /// events raised on an idle CPU with no lost record). Call with
    /// `counted` read before a drain: what the kernel counted then and no
    /// drain since has read, nor a lost record told of, never arrived.
    pub fn check_delivery(&mut self, counted: u64) {
        let missing = counted.saturating_sub(self.samples.saturating_add(self.lost));
        self.undelivered = self.undelivered.max(missing);
    }

    /// The events counted by the kernel so far, over every event and CPU
    /// (those replaced by [`PerfRings::refilter_tag`] included).
    pub fn counted(&self) -> u64 {
        self.retired_counted + self.fds.iter().filter_map(count_of).sum::<u64>()
    }

    /// Events the kernel counted but no ring received (and no lost
    /// record told of): the largest shortfall seen.
    pub fn undelivered(&self) -> u64 {
        self.undelivered
    }

    /// Records that could not be read (and were skipped).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

/// What a perf event counted so far (None if it cannot be read).
fn count_of(fd: &OwnedFd) -> Option<u64> {
    let mut value = [0u8; 8];
    // SAFETY: read(2) into an 8-byte buffer we own; a counting read of a
    // perf event without read_format fills one u64.
    let n = unsafe { libc::read(fd.as_raw_fd(), value.as_mut_ptr().cast(), 8) };
    (n == 8).then(|| u64::from_ne_bytes(value))
}

/// What one walk of a ring found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Walked {
    pub samples: usize,
    pub lost: u64,
    pub malformed: u64,
}

/// Walks the records between `tail` and `head` (free-running offsets into
/// the power-of-two `data`), calling `f` per sample. A record that wraps is
/// copied into `scratch`. A record with a bad size ends the walk (the rest
/// up to head is skipped and counted).
pub fn walk(
    data: &[u8],
    mut tail: u64,
    head: u64,
    scratch: &mut Vec<u8>,
    tags: &FxHashMap<u64, u32>,
    f: &mut dyn FnMut(&Sample<'_>),
) -> Walked {
    let mut walked = Walked::default();
    let size = data.len() as u64;
    if size == 0 || head.wrapping_sub(tail) > size {
        walked.malformed += 1;
        return walked;
    }
    while tail < head {
        let at = (tail % size) as usize;
        let header = read_wrapped(data, at, 8, scratch).to_vec();
        let kind = u32::from_ne_bytes(header[0..4].try_into().expect("4 bytes"));
        let len = u16::from_ne_bytes([header[6], header[7]]) as u64;
        if len < 8 || tail + len > head {
            walked.malformed += 1;
            break;
        }
        let record = read_wrapped(data, at, len as usize, scratch);
        match kind {
            RECORD_SAMPLE => match parse_sample(record, tags) {
                Some(sample) => {
                    f(&sample);
                    walked.samples += 1;
                }
                None => walked.malformed += 1,
            },
            RECORD_LOST if record.len() >= 24 => {
                walked.lost += u64::from_ne_bytes(record[16..24].try_into().expect("8 bytes"));
            }
            _ => {}
        }
        tail += len;
    }
    walked
}

/// `len` bytes at `at`, copied to `scratch` when they wrap past the end.
fn read_wrapped<'d>(data: &'d [u8], at: usize, len: usize, scratch: &'d mut Vec<u8>) -> &'d [u8] {
    if at + len <= data.len() {
        return &data[at..at + len];
    }
    scratch.clear();
    let first = data.len() - at;
    scratch.extend_from_slice(&data[at..]);
    scratch.extend_from_slice(&data[..len - first]);
    scratch
}

/// header | id | pid tid | time | cpu res | raw size | raw.
fn parse_sample<'r>(record: &'r [u8], tags: &FxHashMap<u64, u32>) -> Option<Sample<'r>> {
    let u32_at = |o: usize| Some(u32::from_ne_bytes(record.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_ne_bytes(record.get(o..o + 8)?.try_into().ok()?));
    let id = u64_at(8)?;
    let raw_len = u32_at(40)? as usize;
    Some(Sample {
        tag: *tags.get(&id)?,
        pid: u32_at(16)?,
        tid: u32_at(20)?,
        time_ns: u64_at(24)?,
        cpu: u32_at(32)?,
        raw: record.get(44..44 + raw_len)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_record(id: u64, time: u64, raw: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        let body = 8 + 8 + 8 + 8 + 8 + 4 + raw.len();
        let len = (body + 7) & !7;
        r.extend_from_slice(&RECORD_SAMPLE.to_ne_bytes());
        r.extend_from_slice(&0u16.to_ne_bytes());
        r.extend_from_slice(&(len as u16).to_ne_bytes());
        r.extend_from_slice(&id.to_ne_bytes());
        r.extend_from_slice(&7u32.to_ne_bytes());
        r.extend_from_slice(&8u32.to_ne_bytes());
        r.extend_from_slice(&time.to_ne_bytes());
        r.extend_from_slice(&1u32.to_ne_bytes());
        r.extend_from_slice(&0u32.to_ne_bytes());
        r.extend_from_slice(&(raw.len() as u32).to_ne_bytes());
        r.extend_from_slice(raw);
        r.resize(len, 0);
        r
    }

    fn lost_record(n: u64) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&RECORD_LOST.to_ne_bytes());
        r.extend_from_slice(&0u16.to_ne_bytes());
        r.extend_from_slice(&24u16.to_ne_bytes());
        r.extend_from_slice(&5u64.to_ne_bytes());
        r.extend_from_slice(&n.to_ne_bytes());
        r
    }

    /// A ring of `size` bytes holding `records` from free-running `start`.
    fn ring(size: usize, start: u64, records: &[Vec<u8>]) -> (Vec<u8>, u64) {
        let mut data = vec![0u8; size];
        let mut at = start;
        for r in records {
            for b in r {
                data[(at % size as u64) as usize] = *b;
                at += 1;
            }
        }
        (data, at)
    }

    fn tags() -> FxHashMap<u64, u32> {
        [(42u64, 3u32)].into_iter().collect()
    }

    fn collect(data: &[u8], tail: u64, head: u64) -> (Vec<(u32, u64, Vec<u8>)>, Walked) {
        let mut got = Vec::new();
        let mut scratch = Vec::new();
        let walked = walk(data, tail, head, &mut scratch, &tags(), &mut |s| {
            got.push((s.tag, s.time_ns, s.raw.to_vec()))
        });
        (got, walked)
    }

    #[test]
    fn samples_and_lost_records_are_read() {
        let records = [
            sample_record(42, 100, b"abcd"),
            lost_record(9),
            sample_record(42, 200, b"xy"),
        ];
        let (data, head) = ring(256, 0, &records);
        let (got, walked) = collect(&data, 0, head);
        assert_eq!(
            got,
            vec![(3, 100, b"abcd".to_vec()), (3, 200, b"xy".to_vec())]
        );
        assert_eq!(walked.lost, 9);
        assert_eq!(walked.samples, 2);
    }

    #[test]
    fn a_record_wrapping_the_ring_end_is_read_whole() {
        let records = [sample_record(42, 5, b"0123456789abcdef")];
        // Starts 16 bytes before the end of a 128-byte ring.
        let (data, head) = ring(128, 1000 * 128 + 112, &records);
        let (got, walked) = collect(&data, 1000 * 128 + 112, head);
        assert_eq!(got, vec![(3, 5, b"0123456789abcdef".to_vec())]);
        assert_eq!(walked.malformed, 0);
    }

    #[test]
    fn bad_sizes_end_the_walk_without_panicking() {
        let mut zero = sample_record(42, 1, b"a");
        zero[6] = 0;
        zero[7] = 0;
        let (data, head) = ring(128, 0, &[zero]);
        let (got, walked) = collect(&data, 0, head);
        assert!(got.is_empty());
        assert_eq!(walked.malformed, 1);
        // Head too far ahead of tail: nothing read.
        let (_, walked) = collect(&data, 0, 10_000);
        assert_eq!(walked.malformed, 1);
        // A sample whose raw length runs past its record.
        let mut long = sample_record(42, 1, b"abcd");
        long[40] = 200;
        let (data, head) = ring(128, 0, &[long]);
        let (got, walked) = collect(&data, 0, head);
        assert!(got.is_empty());
        assert_eq!(walked.malformed, 1);
        // Unknown event ids are not handed out.
        let (data, head) = ring(128, 0, &[sample_record(7, 1, b"z")]);
        assert!(collect(&data, 0, head).0.is_empty());
    }
}
