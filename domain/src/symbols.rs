//! Interned strings (owners, tags): each distinct string is stored once and
//! contacts carry 4-byte ids, keeping per-contact state small.

use std::collections::HashMap;

pub type SymbolId = u32;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "Vec<Box<str>>", into = "Vec<Box<str>>")]
pub struct Symbols {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, SymbolId>,
}

/// Saved as the names alone, in id order; the index is rebuilt from them.
impl From<Vec<Box<str>>> for Symbols {
    fn from(names: Vec<Box<str>>) -> Self {
        let mut symbols = Symbols::default();
        for name in &names {
            symbols.intern(name);
        }
        symbols
    }
}

impl From<Symbols> for Vec<Box<str>> {
    fn from(symbols: Symbols) -> Self {
        symbols.names
    }
}

impl Symbols {
    pub fn intern(&mut self, name: &str) -> SymbolId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = SymbolId::try_from(self.names.len()).unwrap_or(SymbolId::MAX);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub fn lookup(&self, name: &str) -> Option<SymbolId> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: SymbolId) -> &str {
        self.names.get(id as usize).map_or("", |name| name)
    }
}
