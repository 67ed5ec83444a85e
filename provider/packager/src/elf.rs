//! Reads the machine field of an ELF header, to check a `bootstrap` against `architecture`.

use crate::Architecture;

/// The architecture of an ELF executable, or None when `data` is not a 64-bit little-endian
/// ELF for x86_64 or aarch64.
pub fn elf_architecture(data: &[u8]) -> Option<Architecture> {
    // e_ident: magic, class 2 (64-bit), data 1 (little endian); e_machine at offset 18.
    if data.len() < 20 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return None;
    }
    match u16::from_le_bytes([data[18], data[19]]) {
        0x3e => Some(Architecture::X86_64),
        0xb7 => Some(Architecture::Arm64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn machines_are_recognised() {
        assert_eq!(elf_architecture(&header(0x3e)), Some(Architecture::X86_64));
        assert_eq!(elf_architecture(&header(0xb7)), Some(Architecture::Arm64));
        assert_eq!(elf_architecture(&header(0x28)), None);
        assert_eq!(elf_architecture(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn this_test_binary_is_read_correctly() {
        let me = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        let expected =
            if cfg!(target_arch = "x86_64") { Some(Architecture::X86_64) } else { Some(Architecture::Arm64) };
        assert_eq!(elf_architecture(&me), expected);
    }
}
