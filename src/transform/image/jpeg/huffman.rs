//! Huffman tables as a JPEG stores them (counts per code length, then symbols): read from a
//! DHT segment, made optimal for counted symbols (ITU T.81 Annex K.2), turned into codes.

use super::Corrupt;

/// Longest code a JPEG Huffman table may hold.
const MAX_LEN: usize = 16;

/// One table: how many codes of each length 1..=16 (`counts[l - 1]`), then the symbols in
/// code order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Table {
    pub(super) counts: [u8; MAX_LEN],
    pub(super) symbols: Vec<u8>,
}

impl Table {
    /// A table as a DHT segment carries it; `bytes` starts at its 16 counts. Returns the table
    /// and how many bytes it took.
    pub(super) fn read(bytes: &[u8]) -> Result<(Table, usize), Corrupt> {
        let counts: [u8; MAX_LEN] = bytes
            .get(..MAX_LEN)
            .and_then(|c| c.try_into().ok())
            .ok_or(Corrupt)?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 {
            return Err(Corrupt);
        }
        let symbols = bytes.get(MAX_LEN..MAX_LEN + total).ok_or(Corrupt)?.to_vec();
        let table = Table { counts, symbols };
        // A table whose codes overflow their lengths decodes nothing sensibly.
        table.codes()?;
        Ok((table, MAX_LEN + total))
    }

    /// The table's bytes in a DHT segment (after its class and id byte).
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.counts);
        out.extend_from_slice(&self.symbols);
    }

    /// The canonical codes (Annex C): `(symbol, code, length)` in code order.
    fn codes(&self) -> Result<Vec<(u8, u16, u8)>, Corrupt> {
        let mut codes = Vec::with_capacity(self.symbols.len());
        let mut symbols = self.symbols.iter();
        let mut code: u32 = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            let length = index + 1;
            for _ in 0..count {
                let &symbol = symbols.next().ok_or(Corrupt)?;
                if code >= 1 << length {
                    return Err(Corrupt);
                }
                codes.push((symbol, code as u16, length as u8));
                code += 1;
            }
            code <<= 1;
        }
        Ok(codes)
    }

    /// The optimal table for `freq` (how often each symbol occurs), codes at most 16 bits and
    /// none all ones, made as libjpeg's `jpeg_gen_optimal_table` does (Annex K.2). A table
    /// nothing used still gets one symbol: decoders insist a scan's tables exist.
    pub(super) fn optimal(freq: &[u64; 256]) -> Result<Table, Corrupt> {
        // Symbol 256 is reserved with the least weight, so the all-ones code goes to it and,
        // removed at the end, to nobody.
        let mut weight = [0u64; 257];
        weight[..256].copy_from_slice(freq);
        if weight.iter().all(|&w| w == 0) {
            weight[0] = 1;
        }
        weight[256] = 1;
        let mut size = [0usize; 257];
        let mut next: [Option<usize>; 257] = [None; 257];
        // The two least weights merged until one is left; on a tie the larger symbol, as
        // libjpeg picks.
        while let Some(c1) = least(&weight, None) {
            let Some(c2) = least(&weight, Some(c1)) else {
                break;
            };
            weight[c1] += weight[c2];
            weight[c2] = 0;
            for start in [c1, c2] {
                let mut at = start;
                size[at] += 1;
                while let Some(n) = next[at] {
                    at = n;
                    size[at] += 1;
                }
                if start == c1 {
                    next[at] = Some(c2);
                }
            }
        }
        // Code lengths can reach 256 only for absurd counts; beyond 32 the adjustment below
        // is not defined.
        let mut per_length = [0usize; 33];
        for &s in size.iter().filter(|&&s| s > 0) {
            *per_length.get_mut(s).ok_or(Corrupt)? += 1;
        }
        // Move codes longer than 16 bits up the tree, two at a time (Annex K.3).
        for length in (MAX_LEN + 1..=32).rev() {
            while per_length[length] > 0 {
                let mut j = length - 2;
                while per_length[j] == 0 {
                    j = j.checked_sub(1).filter(|&j| j > 0).ok_or(Corrupt)?;
                }
                per_length[length] -= 2;
                per_length[length - 1] += 1;
                per_length[j + 1] += 2;
                per_length[j] -= 1;
            }
        }
        // Drop the reserved symbol's code: the longest one.
        let longest = (1..=MAX_LEN)
            .rev()
            .find(|&l| per_length[l] > 0)
            .ok_or(Corrupt)?;
        per_length[longest] -= 1;
        let mut counts = [0u8; MAX_LEN];
        for (count, &n) in counts.iter_mut().zip(&per_length[1..=MAX_LEN]) {
            *count = u8::try_from(n).map_err(|_| Corrupt)?;
        }
        // Symbols by their original code length, shortest first, then by value.
        let mut symbols = Vec::new();
        for length in 1..=32 {
            for (symbol, _) in size[..256].iter().enumerate().filter(|(_, &s)| s == length) {
                symbols.push(symbol as u8);
            }
        }
        Ok(Table { counts, symbols })
    }
}

/// The symbol of least non-zero weight, `skip` aside; the largest such symbol on a tie.
fn least(weight: &[u64; 257], skip: Option<usize>) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &w) in weight.iter().enumerate() {
        if w == 0 || Some(i) == skip {
            continue;
        }
        if best.is_none_or(|b| w <= weight[b]) {
            best = Some(i);
        }
    }
    best
}

/// A table made ready for decoding: the first and last code of each length and where its
/// symbols start (Annex F.2.2.3).
#[derive(Debug, Clone)]
pub(super) struct Decoder {
    max_code: [i32; MAX_LEN + 1],
    min_code: [i32; MAX_LEN + 1],
    first_symbol: [usize; MAX_LEN + 1],
    symbols: Vec<u8>,
}

impl Decoder {
    pub(super) fn new(table: &Table) -> Decoder {
        let mut decoder = Decoder {
            max_code: [-1; MAX_LEN + 1],
            min_code: [0; MAX_LEN + 1],
            first_symbol: [0; MAX_LEN + 1],
            symbols: table.symbols.clone(),
        };
        let mut code: i32 = 0;
        let mut k = 0usize;
        for length in 1..=MAX_LEN {
            let count = usize::from(table.counts[length - 1]);
            if count > 0 {
                decoder.first_symbol[length] = k;
                decoder.min_code[length] = code;
                code += count as i32;
                k += count;
                decoder.max_code[length] = code - 1;
            }
            code <<= 1;
        }
        decoder
    }

    /// The symbol whose code `bit` yields, one bit at a time.
    pub(super) fn decode(
        &self,
        mut bit: impl FnMut() -> Result<u32, Corrupt>,
    ) -> Result<u8, Corrupt> {
        let mut code = bit()? as i32;
        for length in 1..=MAX_LEN {
            if code <= self.max_code[length] {
                let index = self.first_symbol[length] + (code - self.min_code[length]) as usize;
                return self.symbols.get(index).copied().ok_or(Corrupt);
            }
            code = (code << 1) | bit()? as i32;
        }
        Err(Corrupt)
    }
}

/// A table made ready for encoding: each symbol's code and length (0: not in the table).
#[derive(Debug, Clone)]
pub(super) struct Encoder {
    code: [u16; 256],
    length: [u8; 256],
}

impl Encoder {
    pub(super) fn new(table: &Table) -> Result<Encoder, Corrupt> {
        let mut encoder = Encoder {
            code: [0; 256],
            length: [0; 256],
        };
        for (symbol, code, length) in table.codes()? {
            encoder.code[usize::from(symbol)] = code;
            encoder.length[usize::from(symbol)] = length;
        }
        Ok(encoder)
    }

    /// `symbol`'s code and its length in bits.
    pub(super) fn code(&self, symbol: u8) -> Result<(u16, u8), Corrupt> {
        let i = usize::from(symbol);
        match self.length[i] {
            0 => Err(Corrupt),
            length => Ok((self.code[i], length)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(table: &Table, codes: &[(u16, u8)]) -> Vec<u8> {
        let decoder = Decoder::new(table);
        let mut bits = Vec::new();
        for &(code, length) in codes {
            for i in (0..length).rev() {
                bits.push(u32::from(code >> i) & 1);
            }
        }
        let mut bits = bits.into_iter();
        let mut out = Vec::new();
        while bits.len() > 0 {
            out.push(decoder.decode(|| bits.next().ok_or(Corrupt)).unwrap());
        }
        out
    }

    #[test]
    fn an_optimal_table_gives_frequent_symbols_short_codes_and_decodes_back() {
        let mut freq = [0u64; 256];
        freq[0x00] = 1000;
        freq[0x01] = 500;
        freq[0x11] = 20;
        freq[0xF0] = 3;
        freq[0x0A] = 1;
        let table = Table::optimal(&freq).unwrap();
        let encoder = Encoder::new(&table).unwrap();
        let lengths: Vec<u8> = [0x00, 0x01, 0x11, 0xF0, 0x0A]
            .iter()
            .map(|&s| encoder.code(s).unwrap().1)
            .collect();
        assert!(lengths.windows(2).all(|w| w[0] <= w[1]), "{lengths:?}");
        assert_eq!(lengths[0], 1);
        assert!(encoder.code(0x02).is_err(), "unused symbols get no code");
        let message = [0x00, 0x11, 0x01, 0xF0, 0x0A, 0x00];
        let codes: Vec<(u16, u8)> = message.iter().map(|&s| encoder.code(s).unwrap()).collect();
        assert_eq!(decode_all(&table, &codes), message);
    }

    #[test]
    fn no_code_is_all_ones_and_none_is_longer_than_sixteen_bits() {
        // Fibonacci weights make the deepest possible tree: 40 symbols would need 39 bits.
        let mut freq = [0u64; 256];
        let (mut a, mut b) = (1u64, 1u64);
        for f in freq.iter_mut().take(40) {
            *f = a;
            (a, b) = (b, a + b);
        }
        let table = Table::optimal(&freq).unwrap();
        let encoder = Encoder::new(&table).unwrap();
        for symbol in 0..40u8 {
            let (code, length) = encoder.code(symbol).unwrap();
            assert!(length <= 16);
            assert_ne!(u32::from(code), (1u32 << length) - 1, "symbol {symbol}");
        }
    }

    #[test]
    fn a_table_nothing_used_still_has_a_code() {
        let table = Table::optimal(&[0; 256]).unwrap();
        assert_eq!(table.symbols, vec![0]);
        assert_eq!(Encoder::new(&table).unwrap().code(0).unwrap(), (0, 1));
    }

    #[test]
    fn a_table_whose_codes_overflow_is_refused() {
        // Three codes of length 1.
        let mut bytes = vec![3u8];
        bytes.extend([0; 15]);
        bytes.extend([1, 2, 3]);
        assert_eq!(Table::read(&bytes), Err(Corrupt));
        // Counts promising more symbols than the segment holds.
        let mut short = vec![0u8, 2];
        short.extend([0; 14]);
        short.push(1);
        assert_eq!(Table::read(&short), Err(Corrupt));
    }
}
