//! Transcripts (to be written).
