//! With the `cxx` feature, generates and compiles the C++ side of the
//! bridge in src/cxx_bridge.rs (header under target/cxxbridge/).
fn main() {
    #[cfg(feature = "cxx")]
    {
        cxx_build::bridge("src/cxx_bridge.rs").std("c++17").compile("cardveil-cxxbridge");
        println!("cargo:rerun-if-changed=src/cxx_bridge.rs");
    }
}
