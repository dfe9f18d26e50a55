//! Payment cycles at the edge: the files a finance team exchanges with the
//! ledger and with its payment provider, read and written here, with no
//! HTTP and no database. A payment list (`list_file`) and a confirmation
//! file (`confirmation_file`) are read strictly (`table`), each cell
//! parsed into its type (`cells`) or reported by row and column
//! (`report`); release gives each row a random reference (`references`)
//! and the provider gets the instruction file (`instructions`).

pub mod cells;
pub mod cli;
pub mod confirmation_file;
pub mod instructions;
pub mod list_file;
pub mod references;
pub mod report;
pub mod table;
