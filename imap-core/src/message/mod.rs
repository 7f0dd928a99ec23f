//! What FETCH and SEARCH need from a message's bytes: ENVELOPE, BODYSTRUCTURE, sections.
