//! A sequential Huffman scan's entropy-coded data, walked symbol by symbol and written back
//! with other codes: MCUs of blocks, byte stuffing and restart markers as ITU T.81 lays them
//! out. Coefficients are never reconstructed: a symbol and the extra bits after it are
//! carried as they are.

use super::huffman::{Decoder, Encoder};
use super::Corrupt;

/// Which kind of table a symbol is coded with (a DHT segment's class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Class {
    Dc = 0,
    Ac = 1,
}

/// The DC and AC table ids (0..=3) one block of an MCU is coded with.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockTables {
    pub(super) dc: u8,
    pub(super) ac: u8,
}

/// How a scan is laid out: the blocks of one MCU, how many MCUs, and after how many MCUs a
/// restart marker comes (0: none).
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) mcu: Vec<BlockTables>,
    pub(super) mcus: u64,
    pub(super) restart_interval: u64,
}

/// Tables by class and id, as a walk reads or writes them.
pub(super) type Tables<T> = [[Option<T>; 4]; 2];

/// One Huffman-coded symbol, the table it is coded with, and the bits that follow it.
#[derive(Debug, Clone, Copy, Hash)]
pub(super) struct Symbol {
    pub(super) class: Class,
    pub(super) table: u8,
    pub(super) value: u8,
    pub(super) extra: u16,
    pub(super) extra_len: u8,
}

/// What a walk reports, in stream order.
pub(super) trait Visit {
    fn symbol(&mut self, symbol: Symbol) -> Result<(), Corrupt>;
    /// Restart marker `index` (0..=7).
    fn restart(&mut self, index: u8) -> Result<(), Corrupt>;
}

/// Walks every MCU of `data` (a scan's bytes, up to the marker that ends it), as libjpeg's
/// decoder does: a DC symbol, then AC symbols until end-of-block or the 63rd coefficient.
pub(super) fn walk(
    data: &[u8],
    layout: &Layout,
    tables: &Tables<Decoder>,
    visit: &mut impl Visit,
) -> Result<(), Corrupt> {
    let mut reader = BitReader::new(data);
    for mcu in 0..layout.mcus {
        if layout.restart_interval > 0 && mcu > 0 && mcu % layout.restart_interval == 0 {
            let index = ((mcu / layout.restart_interval - 1) % 8) as u8;
            reader.restart(index)?;
            visit.restart(index)?;
        }
        for block in &layout.mcu {
            let dc = decoder(tables, Class::Dc, block.dc)?;
            let size = dc.decode(|| reader.bit())?;
            if size > 15 {
                return Err(Corrupt);
            }
            let extra = reader.bits(size)?;
            visit.symbol(Symbol {
                class: Class::Dc,
                table: block.dc,
                value: size,
                extra,
                extra_len: size,
            })?;
            let ac = decoder(tables, Class::Ac, block.ac)?;
            let mut k = 1usize;
            while k < 64 {
                let symbol = ac.decode(|| reader.bit())?;
                let (run, size) = (symbol >> 4, symbol & 15);
                let extra = reader.bits(size)?;
                visit.symbol(Symbol {
                    class: Class::Ac,
                    table: block.ac,
                    value: symbol,
                    extra,
                    extra_len: size,
                })?;
                if size == 0 {
                    if run != 15 {
                        break; // end of block
                    }
                    k += 15; // sixteen zeros
                } else {
                    k += usize::from(run);
                    if k > 63 {
                        return Err(Corrupt);
                    }
                }
                k += 1;
            }
        }
    }
    Ok(())
}

fn decoder(tables: &Tables<Decoder>, class: Class, id: u8) -> Result<&Decoder, Corrupt> {
    tables[class as usize]
        .get(usize::from(id))
        .and_then(Option::as_ref)
        .ok_or(Corrupt)
}

/// Bits of entropy-coded data, most significant first, with stuffed zero bytes removed.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    byte: u8,
    left: u8,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader {
            data,
            pos: 0,
            byte: 0,
            left: 0,
        }
    }

    fn bit(&mut self) -> Result<u32, Corrupt> {
        if self.left == 0 {
            let byte = *self.data.get(self.pos).ok_or(Corrupt)?;
            if byte == 0xFF {
                // Only a stuffed zero may follow inside the data; a marker here is early.
                if self.data.get(self.pos + 1) != Some(&0) {
                    return Err(Corrupt);
                }
                self.pos += 2;
            } else {
                self.pos += 1;
            }
            self.byte = byte;
            self.left = 8;
        }
        self.left -= 1;
        Ok(u32::from(self.byte >> self.left) & 1)
    }

    fn bits(&mut self, count: u8) -> Result<u16, Corrupt> {
        let mut value = 0u16;
        for _ in 0..count {
            value = (value << 1) | self.bit()? as u16;
        }
        Ok(value)
    }

    /// Drops the padding bits of the current byte and reads restart marker `index`.
    fn restart(&mut self, index: u8) -> Result<(), Corrupt> {
        self.left = 0;
        while self.data.get(self.pos..self.pos + 2) == Some(&[0xFF, 0xFF][..]) {
            self.pos += 1; // fill bytes before a marker
        }
        if self.data.get(self.pos..self.pos + 2) != Some(&[0xFF, 0xD0 + index][..]) {
            return Err(Corrupt);
        }
        self.pos += 2;
        Ok(())
    }
}

/// Writes a walk's symbols with other codes: the same extra bits, zero bytes stuffed after
/// every 0xFF, padding with one bits before each restart marker and at the end.
pub(super) struct Recoder<'t> {
    tables: &'t Tables<Encoder>,
    out: Vec<u8>,
    bits: u64,
    pending: u8,
}

impl<'t> Recoder<'t> {
    pub(super) fn new(tables: &'t Tables<Encoder>, capacity: usize) -> Recoder<'t> {
        Recoder {
            tables,
            out: Vec::with_capacity(capacity),
            bits: 0,
            pending: 0,
        }
    }

    fn put(&mut self, value: u16, length: u8) {
        self.bits = (self.bits << length) | u64::from(value);
        self.pending += length;
        while self.pending >= 8 {
            self.pending -= 8;
            let byte = (self.bits >> self.pending) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
        }
        self.bits &= (1u64 << self.pending) - 1;
    }

    fn pad(&mut self) {
        if self.pending > 0 {
            let fill = 8 - self.pending;
            self.put((1u16 << fill) - 1, fill);
        }
    }

    /// The scan's bytes, padded to a whole byte.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.pad();
        self.out
    }
}

impl Visit for Recoder<'_> {
    fn symbol(&mut self, symbol: Symbol) -> Result<(), Corrupt> {
        let encoder = self.tables[symbol.class as usize]
            .get(usize::from(symbol.table))
            .and_then(Option::as_ref)
            .ok_or(Corrupt)?;
        let (code, length) = encoder.code(symbol.value)?;
        self.put(code, length);
        self.put(symbol.extra, symbol.extra_len);
        Ok(())
    }

    fn restart(&mut self, index: u8) -> Result<(), Corrupt> {
        self.pad();
        self.out.extend([0xFF, 0xD0 + index]);
        Ok(())
    }
}
