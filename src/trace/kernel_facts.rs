//! Facts about the running kernel that an event cannot tell by itself:
//! where `tcp_delack_timer` is (/proc/kallsyms; not needed where the
//! kernel's event filter takes the function's name), and where the delayed-ACK
//! timer sits inside a socket (`struct inet_connection_sock`'s
//! `icsk_delack_timer`, read from the kernel's own BTF at
//! /sys/kernel/btf/vmlinux with the btf-rs crate). Together they turn a
//! `timer:timer_expire_entry` event into "the delayed-ACK timer of the
//! socket at address X fired".

use std::path::Path;

/// The delayed-ACK timer: its callback's address, and its offset in the
/// socket (a TCP socket starts with its `inet_connection_sock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelackTimer {
    pub function: u64,
    pub offset: u64,
}

impl DelackTimer {
    /// The socket whose timer is at `timer`, when `function` is the
    /// delayed-ACK callback.
    pub fn socket_of(&self, timer: u64, function: u64) -> Option<u64> {
        (function == self.function && timer > self.offset).then(|| timer - self.offset)
    }
}

/// Which of the kernel's text symbols are UDP's (their name says `udp`),
/// so that an address inside one (a kfree_skb's `location`) tells a UDP
/// datagram's drop from others. Built from /proc/kallsyms once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelText {
    /// Start addresses of text symbols, ascending, and whether each is UDP's.
    starts: Vec<(u64, bool)>,
}

impl KernelText {
    /// From the text of /proc/kallsyms: text symbols (`t`/`T`) with a
    /// real address. None when every address is hidden (kptr_restrict).
    pub fn parse(kallsyms: &str) -> Option<KernelText> {
        let mut starts: Vec<(u64, bool)> = kallsyms
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_ascii_whitespace();
                let address = u64::from_str_radix(parts.next()?, 16).ok()?;
                let kind = parts.next()?;
                let name = parts.next()?;
                // A module's symbols carry `[module]` after the name; the
                // tunnel modules' own udp helpers count as UDP's too.
                (address != 0 && matches!(kind, "t" | "T"))
                    .then(|| (address, name.contains("udp") || name.contains("UDP")))
            })
            .collect();
        if starts.is_empty() {
            return None;
        }
        starts.sort_unstable_by_key(|s| s.0);
        Some(KernelText { starts })
    }

    /// Whether `address` lies in a UDP function (the nearest symbol at or
    /// below it is one).
    pub fn is_udp(&self, address: u64) -> bool {
        let at = self.starts.partition_point(|s| s.0 <= address);
        at > 0 && self.starts[at - 1].1
    }
}

/// The kernel's text symbols, or why they cannot be read (not root, or
/// kernel.kptr_restrict hides them). One read of /proc/kallsyms (~30 ms
/// of the kernel's CPU).
pub fn kernel_text() -> Result<KernelText, String> {
    let text = std::fs::read_to_string(KALLSYMS).map_err(|e| format!("{KALLSYMS}: {e}"))?;
    KernelText::parse(&text).ok_or_else(|| {
        format!("{KALLSYMS} shows no addresses (hidden by kernel.kptr_restrict, or not root)")
    })
}

const KALLSYMS: &str = "/proc/kallsyms";
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The running kernel's delayed-ACK timer, or why it cannot be known.
pub fn delack_timer() -> Result<DelackTimer, String> {
    let offset = delack_offset()?;
    Ok(DelackTimer {
        function: delack_function()?,
        offset,
    })
}

/// Where the delayed-ACK timer sits in a TCP socket (BTF, mapped: cheap).
pub fn delack_offset() -> Result<u64, String> {
    member_offset(
        Path::new(VMLINUX_BTF),
        "inet_connection_sock",
        "icsk_delack_timer",
    )
}

/// The address of `tcp_delack_timer`. /proc/kallsyms costs ~30 ms of the
/// kernel's CPU to read whole, so the read stops at the symbol.
pub fn delack_function() -> Result<u64, String> {
    let file = std::fs::File::open(KALLSYMS).map_err(|e| format!("{KALLSYMS}: {e}"))?;
    let mut lines = std::io::BufReader::with_capacity(256 * 1024, file);
    let mut line = String::new();
    loop {
        line.clear();
        match std::io::BufRead::read_line(&mut lines, &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if let Some(address) = symbol_address(&line, "tcp_delack_timer") {
                    return Ok(address);
                }
            }
            Err(e) => return Err(format!("{KALLSYMS}: {e}")),
        }
    }
    Err(format!("{KALLSYMS} has no address for tcp_delack_timer (hidden by kernel.kptr_restrict, or not root?)"))
}

pub fn symbol_address(kallsyms: &str, name: &str) -> Option<u64> {
    kallsyms.lines().find_map(|line| {
        let mut parts = line.split_ascii_whitespace();
        let address = parts.next()?;
        let kind = parts.next()?;
        let symbol = parts.next()?;
        let text = matches!(kind, "t" | "T");
        if symbol != name || !text {
            return None;
        }
        u64::from_str_radix(address, 16).ok().filter(|a| *a != 0)
    })
}

/// A struct member's byte offset, from a BTF file.
pub fn member_offset(btf_path: &Path, structure: &str, member: &str) -> Result<u64, String> {
    let say = |e: &dyn std::fmt::Display| format!("{}: {e}", btf_path.display());
    if !btf_path.exists() {
        return Err(format!(
            "{} is absent (a kernel built without CONFIG_DEBUG_INFO_BTF)",
            btf_path.display()
        ));
    }
    // Mapped, only the types asked for are parsed (parsing every type of
    // vmlinux takes a debug build half a second); older kernels cannot
    // map the file, so it is read whole there.
    let btf = btf_rs::Btf::from_file_with_backend(btf_path, btf_rs::Backend::Mmap)
        .or_else(|_| btf_rs::Btf::from_file(btf_path))
        .map_err(|e| say(&e))?;
    let types = btf.resolve_types_by_name(structure).map_err(|e| say(&e))?;
    for found in types {
        let btf_rs::Type::Struct(s) = found else {
            continue;
        };
        for m in &s.members {
            if btf.resolve_name(m).is_ok_and(|n| n == member) {
                return Ok(u64::from(m.bit_offset() / 8));
            }
        }
    }
    Err(format!(
        "{}: no member {member} in struct {structure}",
        btf_path.display()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_address_is_udps_when_its_function_is() {
        let text = super::KernelText::parse(
            "ffffffff81000000 T tcp_v4_rcv\nffffffff81000100 T __udp4_lib_rcv\nffffffff81000200 t udp_queue_rcv_one_skb\nffffffff81000300 T sk_skb_reason_drop\nffffffff81000400 D udp_table\n",
        )
        .unwrap();
        assert!(!text.is_udp(0xffffffff81000050));
        assert!(text.is_udp(0xffffffff81000100));
        assert!(text.is_udp(0xffffffff812002ff - 0x200000));
        assert!(!text.is_udp(0xffffffff81000300));
        // Data symbols are no functions: past the last text, the last text.
        assert!(!text.is_udp(0xffffffff81000450));
        assert!(!text.is_udp(0x10));
        assert!(super::KernelText::parse("0000000000000000 T udp_rcv\n").is_none());
    }

    use super::*;

    #[test]
    fn text_symbols_are_found_and_hidden_ones_are_none() {
        let text = "ffffffff8202b9c0 T tcp_delack_timer_handler\n\
                    ffffffff8202bae0 t tcp_delack_timer\n\
                    ffffffffc0001000 t tcp_delack_timer\t[some_module]\n";
        assert_eq!(
            symbol_address(text, "tcp_delack_timer"),
            Some(0xffffffff8202bae0)
        );
        let hidden = "0000000000000000 t tcp_delack_timer\n";
        assert_eq!(symbol_address(hidden, "tcp_delack_timer"), None);
        assert_eq!(
            symbol_address("garbage\n\nff x\n", "tcp_delack_timer"),
            None
        );
        // A data symbol of the same name is not the function.
        assert_eq!(
            symbol_address("ffff0000 d tcp_delack_timer\n", "tcp_delack_timer"),
            None
        );
    }

    #[test]
    fn a_timer_belongs_to_a_socket_only_for_the_delack_callback() {
        let timer = DelackTimer {
            function: 0xffffffff8202bae0,
            offset: 0x3a0,
        };
        assert_eq!(
            timer.socket_of(0xffff8880000013a0, 0xffffffff8202bae0),
            Some(0xffff888000001000)
        );
        assert_eq!(
            timer.socket_of(0xffff8880000013a0, 0xffffffff81000000),
            None
        );
        assert_eq!(timer.socket_of(0x10, 0xffffffff8202bae0), None);
    }

    #[test]
    fn the_running_kernels_btf_gives_the_delack_timer_offset_when_present() {
        let path = Path::new(VMLINUX_BTF);
        if !path.exists() {
            eprintln!("skipped: {VMLINUX_BTF} absent");
            return;
        }
        let offset = member_offset(path, "inet_connection_sock", "icsk_delack_timer").unwrap();
        // Past struct sock and inet_sock, well inside a TCP socket.
        assert!((512..4096).contains(&offset), "offset {offset}");
        assert!(member_offset(path, "inet_connection_sock", "no_such_member").is_err());
        assert!(member_offset(Path::new("/nonexistent/btf"), "a", "b")
            .unwrap_err()
            .contains("absent"));
    }
}
