//! Just enough protobuf for the containerd messages dlx sends and reads, written by
//! hand from containerd's `.proto` files (`api/services/{containers,tasks,namespaces}/v1`,
//! `api/types/task`). A handful of string fields out, a few messages in: not worth
//! `protoc` at build time or a code generator in the tree.
//!
//! Field numbers are the contract; unknown fields are skipped, as protobuf requires.

/// A malformed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed protobuf: {0}")]
pub struct ProtoError(pub &'static str);

/// One field's value on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    fn bytes(self) -> Result<&'a [u8], ProtoError> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(ProtoError("expected a length-delimited field")),
        }
    }

    fn string(self) -> Result<String, ProtoError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| ProtoError("string is not UTF-8"))
    }

    fn uint(self) -> Result<u64, ProtoError> {
        match self {
            Value::Varint(v) => Ok(v),
            _ => Err(ProtoError("expected a varint field")),
        }
    }
}

/// The fields of one message, in wire order.
pub struct Fields<'a> {
    buf: &'a [u8],
}

/// Iterate over the fields of `buf`.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

fn varint(buf: &mut &[u8]) -> Result<u64, ProtoError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(ProtoError("truncated varint"))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ProtoError("varint longer than 10 bytes"))
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], ProtoError> {
    if buf.len() < n {
        return Err(ProtoError("truncated field"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let item = (|| {
            let key = varint(&mut self.buf)?;
            let field = u32::try_from(key >> 3).map_err(|_| ProtoError("field number"))?;
            let value = match key & 7 {
                0 => Value::Varint(varint(&mut self.buf)?),
                1 => Value::Fixed64(u64::from_le_bytes(
                    take(&mut self.buf, 8)?.try_into().expect("8 bytes"),
                )),
                2 => {
                    let len = usize::try_from(varint(&mut self.buf)?)
                        .map_err(|_| ProtoError("length"))?;
                    Value::Bytes(take(&mut self.buf, len)?)
                }
                5 => Value::Fixed32(u32::from_le_bytes(
                    take(&mut self.buf, 4)?.try_into().expect("4 bytes"),
                )),
                _ => return Err(ProtoError("unsupported wire type")),
            };
            Ok((field, value))
        })();
        if item.is_err() {
            // Stop after the first error: the rest cannot be framed.
            self.buf = &[];
        }
        Some(item)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append a length-delimited field (string, bytes, or an encoded message).
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field) << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Append a varint field.
pub fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    put_varint(out, u64::from(field) << 3);
    put_varint(out, v);
}

/// A request whose only field is string field 1 (`GetContainerRequest.id`,
/// `tasks.GetRequest.container_id`); empty means the empty message, as proto3 omits
/// default values (`ListContainersRequest`, `ListTasksRequest`, ...).
pub fn request_with_id(id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !id.is_empty() {
        put_bytes(&mut out, 1, id.as_bytes());
    }
    out
}

/// `containerd.services.containers.v1.Container`, the fields dlx reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub labels: Vec<(String, String)>,
    pub image: String,
    /// `spec` (a `google.protobuf.Any`): its type URL and value (the OCI spec, JSON).
    pub spec_type: String,
    pub spec: Vec<u8>,
}

impl Container {
    pub fn decode(buf: &[u8]) -> Result<Container, ProtoError> {
        let mut c = Container::default();
        for field in fields(buf) {
            match field? {
                (1, v) => c.id = v.string()?,
                (2, v) => {
                    let (mut key, mut value) = (String::new(), String::new());
                    for entry in fields(v.bytes()?) {
                        match entry? {
                            (1, k) => key = k.string()?,
                            (2, val) => value = val.string()?,
                            _ => {}
                        }
                    }
                    c.labels.push((key, value));
                }
                (3, v) => c.image = v.string()?,
                (5, v) => {
                    for any in fields(v.bytes()?) {
                        match any? {
                            (1, t) => c.spec_type = t.string()?,
                            (2, value) => c.spec = value.bytes()?.to_vec(),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `containerd.v1.types.Status` of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unknown,
    Created,
    Running,
    Stopped,
    Paused,
    Pausing,
}

impl Status {
    fn from_wire(v: u64) -> Status {
        match v {
            1 => Status::Created,
            2 => Status::Running,
            3 => Status::Stopped,
            4 => Status::Paused,
            5 => Status::Pausing,
            _ => Status::Unknown,
        }
    }
}

/// `containerd.v1.types.Process`: a task's process, the fields dlx reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub container_id: String,
    /// The process ID: the container's ID for its init (`Tasks.List` fills in only
    /// this one, not `container_id`).
    pub id: String,
    pub pid: u32,
    pub status: Status,
}

impl Process {
    /// The container this process belongs to.
    pub fn container(&self) -> &str {
        if self.container_id.is_empty() {
            &self.id
        } else {
            &self.container_id
        }
    }

    pub fn decode(buf: &[u8]) -> Result<Process, ProtoError> {
        let mut p = Process {
            container_id: String::new(),
            id: String::new(),
            pid: 0,
            status: Status::Unknown,
        };
        for field in fields(buf) {
            match field? {
                (1, v) => p.container_id = v.string()?,
                (2, v) => p.id = v.string()?,
                (3, v) => p.pid = u32::try_from(v.uint()?).map_err(|_| ProtoError("pid"))?,
                (4, v) => p.status = Status::from_wire(v.uint()?),
                _ => {}
            }
        }
        Ok(p)
    }
}

/// The messages of `field` in `buf`, each decoded by `decode`: the shape of every
/// `Get*Response` (one) and `List*Response` (many) dlx reads.
pub fn each<T>(
    buf: &[u8],
    field: u32,
    decode: impl Fn(&[u8]) -> Result<T, ProtoError>,
) -> Result<Vec<T>, ProtoError> {
    let mut out = Vec::new();
    for f in fields(buf) {
        let (n, v) = f?;
        if n == field {
            out.push(decode(v.bytes()?)?);
        }
    }
    Ok(out)
}

/// `ListNamespacesResponse`: the names of its `Namespace`s.
pub fn namespace_names(buf: &[u8]) -> Result<Vec<String>, ProtoError> {
    each(buf, 1, |ns| {
        let mut name = String::new();
        for f in fields(ns) {
            if let (1, v) = f? {
                name = v.string()?;
            }
        }
        Ok(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_bytes() -> Vec<u8> {
        let mut label = Vec::new();
        put_bytes(&mut label, 1, b"nerdctl/name");
        put_bytes(&mut label, 2, b"web");
        let mut any = Vec::new();
        put_bytes(
            &mut any,
            1,
            b"types.containerd.io/opencontainers/runtime-spec/1/Spec",
        );
        put_bytes(&mut any, 2, br#"{"hostname":"h"}"#);
        let mut runtime = Vec::new();
        put_bytes(&mut runtime, 1, b"io.containerd.runc.v2");
        let mut c = Vec::new();
        put_bytes(&mut c, 1, b"abc123");
        put_bytes(&mut c, 2, &label);
        put_bytes(&mut c, 3, b"docker.io/library/probe:1");
        put_bytes(&mut c, 4, &runtime);
        put_bytes(&mut c, 5, &any);
        put_bytes(&mut c, 6, b"overlayfs");
        put_uint(&mut c, 99, 7); // an unknown varint field is skipped
        c
    }

    #[test]
    fn container_decodes_the_fields_dlx_reads() {
        let c = Container::decode(&container_bytes()).unwrap();
        assert_eq!(c.id, "abc123");
        assert_eq!(c.image, "docker.io/library/probe:1");
        assert_eq!(c.label("nerdctl/name"), Some("web"));
        assert!(c.spec_type.ends_with("/Spec"));
        assert_eq!(c.spec, br#"{"hostname":"h"}"#);
    }

    #[test]
    fn responses_wrap_messages_in_field_one() {
        let mut resp = Vec::new();
        put_bytes(&mut resp, 1, &container_bytes());
        put_bytes(&mut resp, 1, &container_bytes());
        assert_eq!(each(&resp, 1, Container::decode).unwrap().len(), 2);

        let mut p = Vec::new();
        put_bytes(&mut p, 2, b"abc123");
        put_uint(&mut p, 3, 4242);
        put_uint(&mut p, 4, 2);
        put_uint(&mut p, 9, 0);
        let mut resp = Vec::new();
        put_bytes(&mut resp, 1, &p);
        let got = each(&resp, 1, Process::decode).unwrap();
        assert_eq!(
            got,
            vec![Process {
                container_id: String::new(),
                id: "abc123".into(),
                pid: 4242,
                status: Status::Running
            }]
        );

        let mut ns = Vec::new();
        put_bytes(&mut ns, 1, b"moby");
        let mut resp = Vec::new();
        put_bytes(&mut resp, 1, &ns);
        assert_eq!(namespace_names(&resp).unwrap(), vec!["moby"]);
    }

    #[test]
    fn requests_encode_field_one_or_nothing() {
        assert_eq!(request_with_id("ab"), vec![0x0a, 2, b'a', b'b']);
        assert!(request_with_id("").is_empty());
        let long = "x".repeat(200);
        let enc = request_with_id(&long);
        assert_eq!(&enc[..3], &[0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = container_bytes();
        for cut in 1..bytes.len() {
            let _ = Container::decode(&bytes[..cut]);
        }
        assert!(Container::decode(&[0x0a, 0x05, b'a']).is_err());
        assert!(fields(&[0xff; 11]).next().unwrap().is_err());
    }
}
