//! The report model (serde, versioned), its renderers (JSON, JUnit XML, HTML, Markdown)
//! and the release gate. Knows nothing of KVM.
