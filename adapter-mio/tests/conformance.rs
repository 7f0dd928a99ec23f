//! The shared adapter conformance suite, under mio.

mod runtime;

use runtime::Mio;

adapter_conformance::suite!(Mio);
