// Empty label sets, enums and metric structs say what to write instead.
use mesh_metrics::{LabelSet, LabelValue, Metrics};

#[derive(LabelSet)]
struct NoLabels {}

#[derive(LabelValue)]
enum NoValues {}

#[derive(Metrics)]
struct NoMetrics {}

fn main() {}
