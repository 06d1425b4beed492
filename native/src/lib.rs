//! Avro single-object payloads straight to Arrow record batches, for the vtforge ingestor.
//!
//! The decoding itself is `arrow-avro`'s streaming `Decoder` (Apache Arrow's Rust Avro reader:
//! single-object framing, writer schemas by CRC-64-AVRO fingerprint, resolution to a reader
//! schema). This crate only adds what the ingestor needs around it:
//!
//! * every body is first read once by the Apache Avro reference reader (`apache-avro`), which
//!   is strict where arrow-avro is lenient (union branches, enum indices; see `Strict`);
//! * payloads are fed **one at a time** and each must decode to exactly one row using exactly
//!   its own bytes; anything else (an error, a truncated body, trailing bytes) stops the call with
//!   the index of the offending payload, so the caller can fall back to per-record decoding and
//!   quarantine precisely what is bad. The decoder is rebuilt after a failure because a row that
//!   failed half-way leaves its column builders uneven;
//! * the GIL is released while decoding, and batches leave through the Arrow C data interface
//!   (`__arrow_c_array__` capsules), so pyarrow takes the buffers without a copy.

use apache_avro::reader::datum::GenericDatumReader;
use arrow_array::ffi::{to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_avro::codec::Tz;
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyList, PyTuple};

pyo3::create_exception!(
    vtforge_native,
    PayloadError,
    PyValueError,
    "A payload that does not decode to exactly one record; args: (index, message)."
);

/// One writer schema: the key its payloads carry in their header, and its JSON.
type Writer = (Vec<u8>, String);

/// How a payload names its writer schema.
#[derive(Clone, Copy)]
enum Framing {
    /// Avro single-object encoding: `C3 01` + 8-byte little-endian CRC-64-AVRO fingerprint.
    SingleObject,
    /// Confluent wire format: `00` + 4-byte big-endian schema registry id.
    Confluent,
}

impl Framing {
    fn parse(name: &str) -> PyResult<Self> {
        match name {
            "single_object" => Ok(Self::SingleObject),
            "confluent" => Ok(Self::Confluent),
            other => Err(PyValueError::new_err(format!("unknown framing {other:?}"))),
        }
    }

    /// Where the writer's key sits in a payload's header; the body starts at its end.
    fn key_range(self) -> std::ops::Range<usize> {
        match self {
            Self::SingleObject => 2..10,
            Self::Confluent => 1..5,
        }
    }

    fn fingerprint(self, key: &[u8]) -> PyResult<Fingerprint> {
        let wrong = || PyValueError::new_err(format!("a writer key of {} bytes", key.len()));
        Ok(match self {
            Self::SingleObject => {
                Fingerprint::Rabin(u64::from_le_bytes(key.try_into().map_err(|_| wrong())?))
            }
            Self::Confluent => {
                Fingerprint::Id(u32::from_be_bytes(key.try_into().map_err(|_| wrong())?))
            }
        })
    }

    fn store(self) -> SchemaStore {
        match self {
            Self::SingleObject => SchemaStore::new(),
            Self::Confluent => SchemaStore::new_with_type(FingerprintAlgorithm::Id),
        }
    }
}

fn build_decoder(
    reader: &str,
    writers: &[Writer],
    framing: Framing,
    batch_size: usize,
) -> PyResult<Decoder> {
    let mut store = framing.store();
    for (key, json) in writers {
        store
            .set(framing.fingerprint(key)?, AvroSchema::new(json.clone()))
            .map_err(value_error)?;
    }
    ReaderBuilder::new()
        .with_batch_size(batch_size)
        .with_reader_schema(AvroSchema::new(reader.to_string()))
        .with_writer_schema_store(store)
        .with_tz(Tz::Utc)
        .build_decoder()
        .map_err(value_error)
}

/// Decodes framed Avro payloads of one event type into Arrow batches.
#[pyclass(module = "vtforge_native")]
struct SingleObjectDecoder {
    reader: String,
    writers: Vec<Writer>,
    framing: Framing,
    strict: Strict,
    decoder: Option<Decoder>,
    capacity: usize,
}

#[pymethods]
impl SingleObjectDecoder {
    /// ``reader_schema``: the JSON every payload resolves to; ``writer_schemas``: every
    /// ``(key, json)`` a payload may name — the 8-byte fingerprint for ``framing =
    /// "single_object"``, the 4-byte big-endian registry id for ``"confluent"``.
    #[new]
    #[pyo3(signature = (reader_schema, writer_schemas, framing = "single_object"))]
    fn new(reader_schema: String, writer_schemas: Vec<Writer>, framing: &str) -> PyResult<Self> {
        let framing = Framing::parse(framing)?;
        build_decoder(&reader_schema, &writer_schemas, framing, 1)?; // fail early on a bad schema
        let strict = Strict::new(&writer_schemas, framing)?;
        Ok(Self {
            reader: reader_schema,
            writers: writer_schemas,
            framing,
            strict,
            decoder: None,
            capacity: 0,
        })
    }

    /// Decode ``payloads`` (a list of ``bytes``) into a list of batches holding one row per
    /// payload, in order. Raises ``PayloadError(index, message)`` at the first bad payload.
    fn decode<'py>(
        &mut self,
        py: Python<'py>,
        payloads: &Bound<'py, PyList>,
    ) -> PyResult<Vec<ArrowBatch>> {
        let wanted = payloads.len() + 1; // never full by row count: only a schema switch flushes
        if self.decoder.is_none() || self.capacity < wanted {
            self.capacity = wanted.next_power_of_two().max(1024);
            self.decoder = Some(build_decoder(
                &self.reader,
                &self.writers,
                self.framing,
                self.capacity,
            )?);
        }
        let result = self.decode_all(py, payloads);
        if result.is_err() {
            self.decoder = None; // half-decoded rows leave the builders uneven: start afresh
        }
        result
    }
}

impl SingleObjectDecoder {
    fn decode_all(
        &mut self,
        py: Python<'_>,
        payloads: &Bound<'_, PyList>,
    ) -> PyResult<Vec<ArrowBatch>> {
        // Hold a reference to every payload (the list may change under us once the GIL is
        // released), then decode without the GIL so the ingestor's fetching goes on meanwhile.
        let mut held = Vec::with_capacity(payloads.len());
        for (index, item) in payloads.iter().enumerate() {
            held.push(
                item.cast_into::<PyBytes>()
                    .map_err(|_| bad(index, "payload is not bytes"))?,
            );
        }
        let slices = Slices(
            held.iter()
                .map(|b| (b.as_bytes().as_ptr(), b.as_bytes().len()))
                .collect(),
        );
        let capacity = self.capacity;
        let strict = &self.strict;
        let decoder = self.decoder.as_mut().expect("decoder built above");
        let decoded = py.detach(move || {
            // Moved whole, so the closure owns the Send wrapper. SAFETY: every slice points into
            // a bytes object in `held`, alive and immutable until this closure returns.
            let slices = slices;
            let payloads = slices
                .0
                .iter()
                .map(|&(ptr, len)| unsafe { std::slice::from_raw_parts(ptr, len) });
            decode_payloads(decoder, strict, capacity, payloads)
        });
        drop(held);
        match decoded {
            Ok(batches) => Ok(batches.into_iter().map(ArrowBatch::new).collect()),
            Err((Some(index), message)) => Err(bad(index, &message)),
            Err((None, message)) => Err(PyRuntimeError::new_err(message)),
        }
    }
}

/// Raw payload slices that may cross into the GIL-free section (see `decode_all`).
struct Slices(Vec<(*const u8, usize)>);

// SAFETY: the pointed-to bytes are immutable Python bytes kept alive by the caller.
unsafe impl Send for Slices {}

type Failure = (Option<usize>, String);

/// The Apache Avro reference reader (`apache-avro`), used only to check each body.
///
/// arrow-avro builds columns for speed and is lenient with bytes no valid writer produces: any
/// non-zero branch of a `["null", T]` union reads as `T`, and enum indices are not range-checked.
/// Reading the body once with the reference reader rejects those (and everything else that is
/// not one well-formed record), so only payloads the Avro specification accepts become rows.
struct Strict {
    framing: Framing,
    // Declared before the schemas so they are dropped before the schemas they borrow.
    readers: Vec<(Vec<u8>, GenericDatumReader<'static>)>,
    #[allow(clippy::vec_box)] // boxed: the readers point into them while this Vec still grows
    _schemas: Vec<Box<apache_avro::Schema>>,
}

impl Strict {
    fn new(writers: &[Writer], framing: Framing) -> PyResult<Self> {
        let mut readers = Vec::with_capacity(writers.len());
        let mut schemas = Vec::with_capacity(writers.len());
        for (key, json) in writers {
            framing.fingerprint(key)?; // the key has the framing's length
            let schema = Box::new(apache_avro::Schema::parse_str(json).map_err(value_error)?);
            // SAFETY: the schema lives on the heap in `_schemas` for as long as `self`, never
            // moves, and its reader (in `readers`) is dropped first.
            let schema_ref: &'static apache_avro::Schema =
                unsafe { &*(schema.as_ref() as *const _) };
            let reader = GenericDatumReader::builder(schema_ref)
                .build()
                .map_err(value_error)?;
            readers.push((key.clone(), reader));
            schemas.push(schema);
        }
        Ok(Self {
            framing,
            readers,
            _schemas: schemas,
        })
    }

    /// `Err` unless the body after the header is exactly one record of its writer schema.
    fn check(&self, payload: &[u8]) -> Result<(), String> {
        let range = self.framing.key_range();
        let body_start = range.end;
        // a short header or an unknown key: arrow-avro reports it
        let Some(key) = payload.get(range) else {
            return Ok(());
        };
        let Some((_, reader)) = self.readers.iter().find(|(k, _)| k.as_slice() == key) else {
            return Ok(());
        };
        let mut body = &payload[body_start..];
        reader.read_value(&mut body).map_err(|e| e.to_string())?;
        if body.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes left after the record", body.len()))
        }
    }
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Decode each payload to exactly one row from exactly its own bytes, in order.
fn decode_payloads<'a>(
    decoder: &mut Decoder,
    strict: &Strict,
    capacity: usize,
    payloads: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<RecordBatch>, Failure> {
    let mut batches = Vec::new();
    let mut flushed_rows = 0usize;
    for (index, payload) in payloads.enumerate() {
        strict
            .check(payload)
            .map_err(|message| (Some(index), message))?;
        let fail = |e: arrow_avro::errors::AvroError| (Some(index), e.to_string());
        let mut offset = 0usize;
        while offset < payload.len() {
            let consumed = decoder.decode(&payload[offset..]).map_err(fail)?;
            offset += consumed;
            if decoder.batch_is_full() {
                // a payload named another writer schema: the rows so far leave first
                if let Some(batch) = decoder.flush().map_err(fail)? {
                    flushed_rows += batch.num_rows();
                    batches.push(batch);
                }
            } else if consumed == 0 {
                break;
            }
        }
        let rows = flushed_rows + (capacity - decoder.capacity());
        if rows != index + 1 {
            return Err((Some(index), "payload ends inside the record".to_string()));
        }
        if offset != payload.len() {
            return Err((Some(index), "trailing bytes after the record".to_string()));
        }
    }
    if let Some(batch) = decoder.flush().map_err(|e| (None, e.to_string()))? {
        batches.push(batch);
    }
    Ok(batches)
}

fn bad(index: usize, message: &str) -> PyErr {
    PayloadError::new_err((index, message.to_string()))
}

/// A decoded batch, handed to pyarrow through the Arrow PyCapsule interface.
#[pyclass(module = "vtforge_native")]
struct ArrowBatch {
    batch: Option<RecordBatch>,
}

impl ArrowBatch {
    fn new(batch: RecordBatch) -> Self {
        Self { batch: Some(batch) }
    }
}

#[pymethods]
impl ArrowBatch {
    /// The Arrow C data interface: ``(schema capsule, array capsule)`` of a struct array.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &mut self,
        py: Python<'py>,
        requested_schema: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let _ = requested_schema; // we always export the decoded schema; the caller casts
        let batch = self
            .batch
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this batch was already exported"))?;
        let data = StructArray::from(batch).into_data();
        let (array, schema): (FFI_ArrowArray, FFI_ArrowSchema) =
            to_ffi(&data).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let schema = PyCapsule::new_with_value(py, schema, c"arrow_schema")?;
        let array = PyCapsule::new_with_value(py, array, c"arrow_array")?;
        PyTuple::new(py, [schema.into_any(), array.into_any()])
    }

    fn __len__(&self) -> usize {
        self.batch.as_ref().map_or(0, |b| b.num_rows())
    }
}

#[pymodule]
fn vtforge_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SingleObjectDecoder>()?;
    m.add_class::<ArrowBatch>()?;
    m.add("PayloadError", m.py().get_type::<PayloadError>())?;
    Ok(())
}
