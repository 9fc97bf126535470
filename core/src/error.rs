//! Typed errors for every layer of the core.
//!
//! The split follows rustls: a peer that sends something malformed gets a
//! [`Error::Peer`], a broken transport an [`Error::Channel`], a caller that
//! misuses the API (mismatched shapes, wrong party count) an [`Error::Shape`]
//! or [`Error::Usage`], and a feature that is not built yet an explicit
//! [`Error::Unsupported`]. Nothing here ever carries secret values.

use alloc::string::String;
use core::fmt;

/// Party index, `0..num_parties`. P0 is the client, the last party the server.
pub type PartyId = usize;

/// Every error the core can return.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A peer sent bytes that do not parse or do not match what the protocol expects.
    Peer(PeerError),
    /// The transport failed: a peer went away, or a message could not be delivered.
    Channel(ChannelError),
    /// Tensor shapes do not fit the operation (caller error).
    Shape(String),
    /// The API was used in a way it does not allow (caller error).
    Usage(String),
    /// A fixed-point value cannot be encoded (not finite, or out of range).
    Encoding(String),
    /// The operating system's random number generator failed.
    Randomness,
    /// The feature exists in the design but is not implemented yet.
    Unsupported(&'static str),
    /// The compute device (a GPU) failed: no adapter, lost, out of memory, or
    /// a result that could not be read back. Never carries tensor values.
    Device(String),
    /// A session between client, server and dealer ended: refused, aborted
    /// by a peer, timed out. The code is stable (the npm package exposes it).
    Session(SessionError),
}

/// Why a session ended, with a stable [`ErrorCode`] and words for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// A description for people; never holds secret values.
    pub message: String,
}

impl SessionError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SessionError {
            code,
            message: message.into(),
        }
    }
}

/// Stable error codes of the session layer. They travel in error frames
/// (by name) and surface as the `code` of errors in the npm package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The peer speaks another protocol version.
    Version,
    /// A client token is missing or not accepted.
    Unauthorized,
    /// The server is at its limit of concurrent sessions.
    Busy,
    /// The server's model commitment differs from the one the client expects.
    ModelMismatch,
    /// The dealer is unreachable, refused the session or went away.
    Dealer,
    /// A peer sent bytes that break the protocol (malformed, oversized, out of order).
    Protocol,
    /// A peer was silent for longer than the idle timeout.
    Timeout,
    /// The peer closed the connection.
    Closed,
    /// The request is not valid (inputs of the wrong shape, bad options).
    BadRequest,
    /// The server failed on its side.
    Internal,
}

impl ErrorCode {
    /// The code as a stable string (`"MODEL_MISMATCH"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Version => "VERSION",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Busy => "BUSY",
            ErrorCode::ModelMismatch => "MODEL_MISMATCH",
            ErrorCode::Dealer => "DEALER",
            ErrorCode::Protocol => "PROTOCOL",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl Error {
    /// This error in words, without the code that a [`Error::Session`]'s
    /// `Display` adds in parentheses: for an error frame, which carries the
    /// code beside the words, and for whoever prints the code itself.
    pub fn message(&self) -> String {
        match self {
            Error::Session(e) => e.message.clone(),
            e => alloc::format!("{e}"),
        }
    }

    /// The stable code that best describes this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Session(e) => e.code,
            Error::Peer(PeerError::Version { .. }) => ErrorCode::Version,
            Error::Peer(_) => ErrorCode::Protocol,
            Error::Channel(ChannelError::Closed { .. }) => ErrorCode::Closed,
            Error::Channel(ChannelError::TimedOut) => ErrorCode::Timeout,
            Error::Channel(_) => ErrorCode::Closed,
            Error::Shape(_) | Error::Encoding(_) => ErrorCode::BadRequest,
            Error::Usage(_) | Error::Randomness | Error::Unsupported(_) | Error::Device(_) => {
                ErrorCode::Internal
            }
        }
    }
}

/// What was wrong with a peer's message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerError {
    /// The message has the wrong length for what the protocol expects here.
    WrongLength {
        /// Bytes the protocol expected.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// The message ended before its header or body was complete.
    Truncated,
    /// The message was built by an incompatible protocol version.
    Version {
        /// Our version.
        ours: u8,
        /// The peer's version.
        theirs: u8,
    },
    /// A field holds a value that is not allowed (unknown tag, size over a limit...).
    Malformed(&'static str),
    /// The peer's message answers a different request than the one we made.
    Unexpected(&'static str),
}

/// What went wrong with a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer closed the connection (or its task ended) before the message came.
    Closed {
        /// The peer we were talking to.
        peer: PartyId,
    },
    /// No party can make progress: every party waits for a message nobody will send.
    Deadlock,
    /// The party index is not a peer of this channel.
    NoSuchPeer(PartyId),
    /// A transport-specific failure, described in words.
    Io(String),
    /// The peer was silent for longer than the transport's timeout.
    TimedOut,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Peer(e) => write!(f, "peer sent an invalid message: {e}"),
            Error::Channel(e) => write!(f, "channel error: {e}"),
            Error::Shape(s) => write!(f, "shape mismatch: {s}"),
            Error::Usage(s) => write!(f, "invalid use: {s}"),
            Error::Encoding(s) => write!(f, "fixed-point encoding: {s}"),
            Error::Randomness => write!(f, "the system random number generator failed"),
            Error::Unsupported(s) => write!(f, "unsupported: {s}"),
            Error::Device(s) => write!(f, "compute device: {s}"),
            Error::Session(e) => write!(f, "{} ({})", e.message, e.code.as_str()),
        }
    }
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::WrongLength { expected, got } => {
                write!(f, "expected {expected} bytes, got {got}")
            }
            PeerError::Truncated => write!(f, "message truncated"),
            PeerError::Version { ours, theirs } => {
                write!(f, "protocol version {theirs}, this build speaks {ours}")
            }
            PeerError::Malformed(s) => write!(f, "malformed: {s}"),
            PeerError::Unexpected(s) => write!(f, "unexpected message: {s}"),
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Closed { peer } => write!(f, "party {peer} closed the channel"),
            ChannelError::Deadlock => write!(f, "deadlock: every party waits for a message"),
            ChannelError::NoSuchPeer(p) => write!(f, "party {p} is not a peer of this channel"),
            ChannelError::Io(s) => write!(f, "{s}"),
            ChannelError::TimedOut => write!(f, "the peer was silent past the idle timeout"),
        }
    }
}

impl core::error::Error for Error {}

impl From<PeerError> for Error {
    fn from(e: PeerError) -> Self {
        Error::Peer(e)
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        Error::Session(e)
    }
}

impl From<ChannelError> for Error {
    fn from(e: ChannelError) -> Self {
        Error::Channel(e)
    }
}

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// The element count of `dims` with zero axes counted as one, or `None` on
/// overflow: the bound every size limit checks, since `ndarray` cannot make
/// even an empty array whose other axes multiply past `isize::MAX`.
pub(crate) fn element_bound(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d.max(1)))
}

/// The element count of a buffer of `dims`, or a [`Error::Shape`] when its
/// [`element_bound`] overflows or exceeds [`crate::plan::MAX_ELEMENTS`]:
/// operations whose sizes come from a peer's plan (pooling windows,
/// convolution columns, padding) check here before they allocate.
pub(crate) fn checked_elements(what: &str, dims: &[usize]) -> Result<usize> {
    element_bound(dims)
        .filter(|&n| n <= crate::plan::MAX_ELEMENTS)
        .map(|_| dims.iter().product())
        .ok_or_else(|| {
            Error::Shape(alloc::format!(
                "{what} of {dims:?} is over the limit of {} elements",
                crate::plan::MAX_ELEMENTS
            ))
        })
}

/// `a + b + c` for sizes from a plan, or a [`Error::Shape`] on overflow.
pub(crate) fn checked_sum(what: &str, terms: &[usize]) -> Result<usize> {
    terms
        .iter()
        .try_fold(0usize, |a, &t| a.checked_add(t))
        .ok_or_else(|| Error::Shape(alloc::format!("{what} overflows: {terms:?}")))
}
