//! TEMPORARY: replaced by the toolbox module from the `toolbox` branch.
use std::path::PathBuf;

use crate::settings::ToolboxChoice;

pub struct Toolbox {
    pub root: PathBuf,
    pub bin: String,
}

pub fn prepare(choice: &ToolboxChoice) -> anyhow::Result<Option<Toolbox>> {
    Ok(match choice {
        ToolboxChoice::None => None,
        ToolboxChoice::Dir(d) => Some(Toolbox {
            root: d.clone(),
            bin: if d.join("bin").is_dir() {
                "/.dlx/bin".into()
            } else {
                "/.dlx".into()
            },
        }),
        ToolboxChoice::Default => None,
    })
}
