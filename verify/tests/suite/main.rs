//! The verification suite, all but fault injection (which flips a
//! process-wide switch and keeps a test binary of its own).
//!
//! One test binary per crate: each separate file under tests/ would be
//! compiled and linked as a program of its own, which dominated CI's time.

mod functional_call;
mod fused;
mod gpu;
mod hand_derivations;
mod losses_gradcheck;
mod model_gradcheck;
mod notebook_cae;
mod ops_gradcheck;
mod pytorch_interop;
mod pytorch_reference;
mod transforms;
