//! The shared adapter conformance suite, under smol (two executor threads).

mod runtime;

use runtime::Smol;

adapter_conformance::suite!(Smol<2>);
