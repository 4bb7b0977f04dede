//! Lossless JPEG recompression, what `jpegtran -optimize` does: each scan of a sequential
//! Huffman JPEG re-coded with Huffman tables made for its own symbols. Coefficients,
//! quantisation tables and every other segment stay as they are, so any decoder draws the
//! same pixels; only the entropy coding gets shorter (most encoders use the example tables
//! of the standard).
//!
//! Progressive, arithmetic-coded, lossless and hierarchical JPEGs are left alone: libjpeg and
//! its descendants always make optimal tables for progressive files already, and the others
//! are rare on the web. Anything unexpected leaves the input as it is.

mod entropy;
mod huffman;
#[cfg(test)]
mod tests;

use entropy::{BlockTables, Class, Layout, Recoder, Symbol, Tables, Visit};
use huffman::{Decoder, Encoder, Table};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Malformed, or a kind of JPEG this does not re-code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Corrupt;

/// `jpeg` with optimal Huffman tables, or `None` when it is not a sequential Huffman JPEG
/// read whole without surprise. Every re-coded scan is decoded again and checked against the
/// original's symbols before it is used.
pub(super) fn optimise_huffman(jpeg: &[u8]) -> Option<Vec<u8>> {
    recode(jpeg).ok()
}

/// The frame header's geometry: size and each component's id and sampling factors.
struct Frame {
    width: u64,
    height: u64,
    components: Vec<(u8, u8, u8)>,
}

impl Frame {
    /// SOF0 / SOF1 (8-bit precision only: 12-bit files are rare and code larger sizes).
    fn read(body: &[u8]) -> Result<Frame, Corrupt> {
        let &[precision, h1, h0, w1, w0, count, ref rest @ ..] = body else {
            return Err(Corrupt);
        };
        let (height, width) = (u16::from_be_bytes([h1, h0]), u16::from_be_bytes([w1, w0]));
        // A height of 0 is given later by a DNL marker, which this does not follow.
        if precision != 8 || height == 0 || width == 0 || !(1..=4).contains(&count) {
            return Err(Corrupt);
        }
        if rest.len() != 3 * usize::from(count) {
            return Err(Corrupt);
        }
        let mut components = Vec::with_capacity(usize::from(count));
        for c in rest.chunks_exact(3) {
            let (h, v) = (c[1] >> 4, c[1] & 15);
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                return Err(Corrupt);
            }
            components.push((c[0], h, v));
        }
        Ok(Frame {
            width: u64::from(width),
            height: u64::from(height),
            components,
        })
    }

    /// A scan's layout from its SOS header: which components, coded with which tables.
    fn layout(&self, sos: &[u8], restart_interval: u64) -> Result<Layout, Corrupt> {
        let (&count, rest) = sos.split_first().ok_or(Corrupt)?;
        let count = usize::from(count);
        if !(1..=4).contains(&count) || rest.len() != 2 * count + 3 {
            return Err(Corrupt);
        }
        // Sequential: the whole spectrum, no successive approximation.
        if rest[2 * count..] != [0, 63, 0] {
            return Err(Corrupt);
        }
        let h_max = self.components.iter().map(|c| u64::from(c.1)).max();
        let v_max = self.components.iter().map(|c| u64::from(c.2)).max();
        let (h_max, v_max) = (h_max.ok_or(Corrupt)?, v_max.ok_or(Corrupt)?);
        let mut mcu = Vec::new();
        let mut seen = Vec::with_capacity(count);
        let mut single = (0, 0);
        for pair in rest[..2 * count].chunks_exact(2) {
            let &(id, h, v) = self
                .components
                .iter()
                .find(|c| c.0 == pair[0])
                .ok_or(Corrupt)?;
            let (dc, ac) = (pair[1] >> 4, pair[1] & 15);
            if seen.contains(&id) || dc > 3 || ac > 3 {
                return Err(Corrupt);
            }
            seen.push(id);
            let blocks = if count == 1 { 1 } else { h * v };
            mcu.extend((0..blocks).map(|_| BlockTables { dc, ac }));
            single = (u64::from(h), u64::from(v));
        }
        let mcus = if count == 1 {
            // One component alone: its own blocks, each an MCU (Annex A.2.2).
            let width = (self.width * single.0).div_ceil(h_max);
            let height = (self.height * single.1).div_ceil(v_max);
            width.div_ceil(8) * height.div_ceil(8)
        } else {
            if mcu.len() > 10 {
                return Err(Corrupt);
            }
            self.width.div_ceil(8 * h_max) * self.height.div_ceil(8 * v_max)
        };
        Ok(Layout {
            mcu,
            mcus,
            restart_interval,
        })
    }
}

fn recode(jpeg: &[u8]) -> Result<Vec<u8>, Corrupt> {
    if jpeg.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err(Corrupt);
    }
    let mut out = Vec::with_capacity(jpeg.len());
    out.extend([0xFF, 0xD8]);
    let mut tables: Tables<Table> = Default::default();
    let mut frame: Option<Frame> = None;
    let mut restart_interval = 0;
    let mut scans = 0;
    let mut pos = 2;
    loop {
        while jpeg.get(pos..pos + 2) == Some(&[0xFF, 0xFF][..]) {
            pos += 1; // fill bytes before a marker
        }
        let &[0xFF, marker] = jpeg.get(pos..pos + 2).ok_or(Corrupt)? else {
            return Err(Corrupt);
        };
        if marker == 0xD9 {
            // End of image; anything after it is dropped, as decoders ignore it.
            if scans == 0 {
                return Err(Corrupt);
            }
            out.extend([0xFF, 0xD9]);
            return Ok(out);
        }
        let length = jpeg
            .get(pos + 2..pos + 4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .filter(|&l| l >= 2)
            .ok_or(Corrupt)?;
        let segment = jpeg.get(pos..pos + 2 + length).ok_or(Corrupt)?;
        let body = &segment[4..];
        pos += segment.len();
        match marker {
            0xC4 => read_tables(body, &mut tables)?, // written again before each scan
            0xC0 | 0xC1 if frame.is_none() => {
                frame = Some(Frame::read(body)?);
                out.extend(segment);
            }
            0xDD => {
                let &[r1, r0] = body else {
                    return Err(Corrupt);
                };
                restart_interval = u64::from(u16::from_be_bytes([r1, r0]));
                out.extend(segment);
            }
            0xDA => {
                let layout = frame
                    .as_ref()
                    .ok_or(Corrupt)?
                    .layout(body, restart_interval)?;
                let end = entropy_end(jpeg, pos);
                recode_scan(&mut out, segment, &jpeg[pos..end], &layout, &tables)?;
                scans += 1;
                pos = end;
            }
            // Application data, comments, quantisation tables, reserved segments.
            0x02..=0xBF | 0xDB | 0xE0..=0xEF | 0xF0..=0xFE => out.extend(segment),
            // Another frame, a progressive, lossless, hierarchical or arithmetic one, DNL,
            // and standalone markers out of place.
            _ => return Err(Corrupt),
        }
    }
}

/// Where a scan's entropy-coded data that starts at `start` ends: at the first marker that
/// is neither a stuffed zero nor a restart marker (or the end of the file).
fn entropy_end(jpeg: &[u8], start: usize) -> usize {
    let mut at = start;
    while let Some(offset) = jpeg[at..].iter().position(|&b| b == 0xFF) {
        let ff = at + offset;
        match jpeg.get(ff + 1) {
            Some(0x00 | 0xD0..=0xD7) => at = ff + 2,
            _ => return ff,
        }
    }
    jpeg.len()
}

/// Adds a DHT segment's tables to `tables` (a later table replaces one of the same id).
fn read_tables(mut body: &[u8], tables: &mut Tables<Table>) -> Result<(), Corrupt> {
    while let Some((&class_id, rest)) = body.split_first() {
        let (class, id) = (usize::from(class_id >> 4), usize::from(class_id & 15));
        if class > 1 || id > 3 {
            return Err(Corrupt);
        }
        let (table, used) = Table::read(rest)?;
        tables[class][id] = Some(table);
        body = &rest[used..];
    }
    Ok(())
}

/// Writes one scan re-coded: a DHT segment with its new tables, its SOS segment, its data.
fn recode_scan(
    out: &mut Vec<u8>,
    sos: &[u8],
    data: &[u8],
    layout: &Layout,
    tables: &Tables<Table>,
) -> Result<(), Corrupt> {
    let decoders = decoders_of(tables);
    let mut tally = Tally::default();
    entropy::walk(data, layout, &decoders, &mut tally)?;

    let mut optimal: Tables<Table> = Default::default();
    for block in &layout.mcu {
        for (class, id) in [(Class::Dc, block.dc), (Class::Ac, block.ac)] {
            let slot = &mut optimal[class as usize][usize::from(id)];
            if slot.is_none() {
                *slot = Some(Table::optimal(
                    &tally.freq[class as usize][usize::from(id)],
                )?);
            }
        }
    }
    let mut encoders: Tables<Encoder> = Default::default();
    for (class, row) in optimal.iter().enumerate() {
        for (id, table) in row.iter().enumerate() {
            if let Some(table) = table {
                encoders[class][id] = Some(Encoder::new(table)?);
            }
        }
    }
    let mut recoder = Recoder::new(&encoders, data.len());
    entropy::walk(data, layout, &decoders, &mut recoder)?;
    let recoded = recoder.finish();

    // Decoded with its new tables, the scan must say exactly what it said before.
    let new_decoders = decoders_of(&optimal);
    let mut check = Tally::default();
    entropy::walk(&recoded, layout, &new_decoders, &mut check)?;
    if check.events != tally.events || check.hash.finish() != tally.hash.finish() {
        return Err(Corrupt);
    }

    let mut dht = Vec::new();
    for (class, row) in optimal.iter().enumerate() {
        for (id, table) in row.iter().enumerate() {
            if let Some(table) = table {
                dht.push(((class as u8) << 4) | id as u8);
                table.write(&mut dht);
            }
        }
    }
    let length = u16::try_from(dht.len() + 2).map_err(|_| Corrupt)?;
    out.extend([0xFF, 0xC4]);
    out.extend(length.to_be_bytes());
    out.extend(dht);
    out.extend(sos);
    out.extend(recoded);
    Ok(())
}

/// Each table made ready for decoding.
fn decoders_of(tables: &Tables<Table>) -> Tables<Decoder> {
    tables
        .each_ref()
        .map(|row| row.each_ref().map(|table| table.as_ref().map(Decoder::new)))
}

/// How often each table's symbols occur in a scan, and a digest of the whole stream of
/// symbols, extra bits and restarts in order.
struct Tally {
    freq: [[[u64; 256]; 4]; 2],
    events: u64,
    hash: DefaultHasher,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            freq: [[[0; 256]; 4]; 2],
            events: 0,
            hash: DefaultHasher::new(),
        }
    }
}

impl Visit for Tally {
    fn symbol(&mut self, symbol: Symbol) -> Result<(), Corrupt> {
        self.freq[symbol.class as usize][usize::from(symbol.table)][usize::from(symbol.value)] += 1;
        self.events += 1;
        symbol.hash(&mut self.hash);
        Ok(())
    }

    fn restart(&mut self, index: u8) -> Result<(), Corrupt> {
        self.events += 1;
        self.hash.write_u8(0xD0 + index);
        Ok(())
    }
}
