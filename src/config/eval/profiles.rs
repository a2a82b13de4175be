//! Profiles: named node shapes, evaluated once, and the image rule.

use super::*;

impl Evaluator<'_> {
    pub(super) fn eval_profiles(&mut self) {
        let blocks = self.blocks;
        let rep = Repetition::default();
        for (name, &bi) in self.decl.of("profile").cloned().unwrap_or_default().iter() {
            self.open_value(format!("profile.{name}"));
            let b = &blocks[bi];
            let p = Profile {
                image: self.eval_string(b, "image", &rep),
                cpus: self.eval_cpus(b, &rep),
                memory_mib: self.eval_memory(b, &rep),
                labels: self.eval_labels(b, &rep).unwrap_or_default(),
                platform: self.eval_string(b, "platform", &rep),
            };
            if let Some(img) = &p.image {
                self.check_image(
                    img,
                    b.attr("image")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(b.span.clone()),
                );
            }
            self.profiles.insert(name.clone(), p);
            let mark = self.attr_marks(b, &["image", "cpus", "memory", "labels", "platform"]);
            if let Some(m) = mark {
                self.marks.profiles.insert(name.clone(), m);
            }
        }
    }

    pub(super) fn check_image(&mut self, image: &str, span: Span) {
        let ok = image == "host"
            || image.strip_prefix("debian:").is_some_and(|r| {
                !r.is_empty()
                    && r.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
            || image.strip_prefix("dir:").is_some_and(|p| !p.is_empty());
        if let Some(dir) = image.strip_prefix("dir:").filter(|d| !d.is_empty()) {
            let full = self.opts.dir.join(dir);
            if let Err(e) = self.opts.env.check_image_dir(&full) {
                self.err(Diagnostic::error(e.to_string()).at(span.clone()).help(
                    "this testbed's caller offers only some `dir:` images (for `tg serve`, those its catalog names)",
                ));
                return;
            }
        }
        if !ok {
            self.err(
                Diagnostic::error(format!("unknown image `{image}`"))
                    .at(span)
                    .help("images are `host`, `debian:RELEASE` (such as `debian:bookworm`) and `dir:/path/to/rootfs`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::check;

    #[test]
    fn profiles_shape_nodes() {
        check(
            "profile \"cdn:basic\" {\n  image  = \"debian:bookworm\"\n  cpus   = 2\n  memory = \"1GiB\"\n  labels = { tier = \"cdn\", role = \"x\" }\n}\nnetwork \"lab\" {}\nnode \"a\" {\n  profile = \"cdn:basic\"\n  labels  = { role = \"edge\" }\n}\noutput \"a\" {\n  value = [node.a.image, node.a.cpus, node.a.memory, node.a.labels, node.a.profile]\n}\n",
            r#"a = ["debian:bookworm",2,"1024MiB",{"role":"edge","tier":"cdn"},"cdn:basic"]"#,
        );
        check(
            "profile \"p\" {\n  image = \"ubuntu\"\n}\n",
            "2:11: error: unknown image `ubuntu`",
        );
        let mut opts = crate::config::eval::testing::options();
        opts.env = opts.env.with_image_dirs(vec!["/srv/rootfs".into()]);
        crate::config::eval::testing::check_with(
            &opts,
            "profile \"p\" {\n  image = \"dir:/srv/rootfs\"\n}\nprofile \"q\" {\n  image = \"dir:/srv/rootfs/../other\"\n}\n",
            "5:11: error: `dir:/srv/rootfs/../other` is not an image this testbed may use",
        );
        check(
            "profile \"p\" {\n  image = \"host\"\n}\nnetwork \"lab\" {}\nnode \"a\" {\n  profile = \"q\"\n}\n",
            "6:13: error: unknown profile `q`",
        );
    }
}
