//! A user's crate, written the way users write them: mesh-metrics under
//! another name (`runtime`), 5,000 instrumented fns under one agent, label
//! types with names the generated code might have used, and a metrics struct
//! with a `register` of its own. The tests in `tests/` check the numbers.

#![allow(missing_docs)]

/// The 5,000 generated sites (see `build.rs`).
pub mod many {
    include!(concat!(env!("OUT_DIR"), "/many_sites.rs"));
}

/// Label sets made only of enums, larger than the guard's default limit of
/// 2,000 series: 13 × 13 × 13 = 2,197 combinations, all known at compile time.
pub mod wide {
    macro_rules! thirteen {
        ($name:ident) => {
            #[derive(Clone, Copy, Debug, runtime::LabelValue)]
            #[label(crate = runtime)]
            pub enum $name {
                A,
                B,
                C,
                D,
                E,
                F,
                G,
                H,
                I,
                J,
                K,
                L,
                M,
            }

            impl $name {
                pub const ALL: [Self; 13] = [
                    Self::A,
                    Self::B,
                    Self::C,
                    Self::D,
                    Self::E,
                    Self::F,
                    Self::G,
                    Self::H,
                    Self::I,
                    Self::J,
                    Self::K,
                    Self::L,
                    Self::M,
                ];
            }
        };
    }
    thirteen!(Region);
    thirteen!(Tier);
    // Named like the generic parameters generated code could have used.
    thirteen!(R);

    #[derive(runtime::LabelSet)]
    #[label(crate = runtime)]
    pub struct WideLabels {
        pub region: Region,
        pub tier: Tier,
        pub r: R,
    }

    #[derive(runtime::Metrics)]
    #[metrics(prefix = "user_crate", crate = runtime)]
    pub struct WideMetrics {
        /// Events by region, tier and r.
        pub events_total: runtime::Counter<WideLabels>,
    }

    impl WideMetrics {
        /// The user's own `register`: the derive must not collide with it.
        pub fn register(&self) -> &'static str {
            "the user's register"
        }
    }
}
