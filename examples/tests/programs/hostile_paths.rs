//! Hostile paths (issue 27): named pipes, device nodes and symbolic links
//! where the program reads or writes, a full disk under a picture, a closed
//! or full stdout, a lock file that is a link, long file names. Every node
//! is made by the test in its own temporary folder (`mkfifo`, `mknod`, a
//! small tmpfs); none of the machine's own `/dev` entries is used. Tests
//! that need root (device nodes, mounting) say so and skip without it.

use super::cli::{assert_bad_input, assert_ok, ckpt, contents, gradtape, s, text, tmp, TINY};
use super::hostile::{data_folder, trained};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether the tests run as root (needed for `mknod` and `mount`).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| text(&o.stdout).trim() == "0")
}

/// Makes a named pipe at `path`.
fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(ok.success(), "mkfifo {}", path.display());
}

/// Makes a character device node at `path` with the given numbers (root
/// only): `1 3` is a null device, `1 7` a full one. `false` without root.
fn mknod(path: &Path, major: &str, minor: &str) -> bool {
    if !is_root() {
        eprintln!("skipping the device-node case: mknod needs root");
        return false;
    }
    let ok = Command::new("mknod").arg(path).args(["c", major, minor]).status().expect("mknod runs");
    assert!(ok.success(), "mknod {}", path.display());
    true
}

/// Runs `gradtape args...` in `cwd`, failing the test if it has not ended
/// within 30 seconds (a program blocked on a pipe would never end).
fn gradtape_within(cwd: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradtape"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gradtape starts");
    let started = Instant::now();
    while child.try_wait().expect("gradtape can be waited on").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("gradtape {} hung (blocked on a pipe?)", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("its output")
}

fn is_fifo(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

fn is_char_device(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

#[test]
fn a_named_pipe_given_as_any_input_is_refused_without_waiting() {
    let dir = tmp();
    let d = dir.path();
    let fifo = d.join("pipe.safetensors");
    mkfifo(&fifo);
    let words = ["not a regular file (a named pipe)"];
    for (args, flag) in [
        (vec!["reconstruct", "--weights", s(&fifo), "--model", "vae", "--out", "r.png"], "--weights"),
        (vec!["sample", "--checkpoint", s(&fifo), "--out", "s.png"], "--checkpoint"),
        (vec!["train", "deep", "--init-from", s(&fifo), "--out", "run"], "--init-from"),
    ] {
        let res = gradtape_within(d, &args);
        assert_bad_input(&res, &[flag, "pipe.safetensors", words[0]]);
    }
    // A run folder whose checkpoint is a pipe: refused as an output that is
    // not a regular file, before it is read.
    let out = d.join("run-with-pipe");
    std::fs::create_dir(&out).unwrap();
    mkfifo(&ckpt(&out));
    let mut args = vec!["train", "regularized", "--resume", "--epochs", "2", "--out", s(&out)];
    args.extend_from_slice(TINY);
    let res = gradtape_within(d, &args);
    assert_bad_input(&res, &["--out", "checkpoint.safetensors is a named pipe"]);
    assert!(is_fifo(&ckpt(&out)) && contents_names(&out) == ["checkpoint.safetensors"]);
    // An IDX file that is a pipe.
    let data = d.join("data");
    data_folder(&data, 28, 28, 10, 5, &[1]);
    let images = data.join("t10k-images-idx3-ubyte");
    std::fs::remove_file(&images).unwrap();
    mkfifo(&images);
    let mut args = vec!["train", "deep", "--data", s(&data), "--out", "run-data"];
    args.extend_from_slice(TINY);
    let res = gradtape_within(d, &args);
    assert_bad_input(&res, &["--data", "t10k-images-idx3-ubyte", words[0]]);
    assert!(!d.join("run-data").exists() && !d.join("r.png").exists() && !d.join("s.png").exists());
}

/// The names in a folder, sorted.
fn contents_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn an_output_that_is_a_device_a_pipe_or_a_link_is_refused_before_any_work_and_left_as_it_was() {
    let dir = tmp();
    let d = dir.path();
    let out = trained(d);
    let c = ckpt(&out);
    let fifo = d.join("codes.fifo");
    mkfifo(&fifo);
    let target = d.join("precious.csv");
    std::fs::write(&target, "keep me").unwrap();
    let link = d.join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let refused = |args: &[&str], flag: &str, what: &str| {
        let res = gradtape(d, args);
        assert_bad_input(&res, &[flag, what, "not a regular file; it is not replaced"]);
    };
    refused(&["encode", "--checkpoint", s(&c), "--out", s(&fifo)], "--out", "is a named pipe");
    assert!(is_fifo(&fifo));
    refused(&["encode", "--checkpoint", s(&c), "--out", s(&link)], "--out", "is a symbolic link");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    let node = d.join("null-node");
    if mknod(&node, "1", "3") {
        refused(&["encode", "--checkpoint", s(&c), "--out", s(&node)], "--out", "is a device");
        refused(
            &["reconstruct", "--checkpoint", s(&c), "--out", "r.png", "--csv", s(&node)],
            "--csv",
            "is a device",
        );
        refused(&["graph", "deep", "--out", s(&node)], "--out", "is a device");
        assert!(is_char_device(&node), "the device node was replaced");
        assert!(!d.join("r.png").exists());
    }
    // In a run folder: a picture that is a link is refused before training.
    let before = contents(&out);
    std::fs::remove_file(out.join("loss.png")).unwrap();
    std::os::unix::fs::symlink(&target, out.join("loss.png")).unwrap();
    let mut args = vec!["train", "regularized", "--resume", "--epochs", "2", "--out", s(&out)];
    args.extend_from_slice(TINY);
    assert_bad_input(&gradtape(d, &args), &["--out", "loss.png is a symbolic link"]);
    assert_eq!(std::fs::read(&c).unwrap(), before[&c], "the checkpoint changed");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
}

#[test]
fn the_lock_file_is_never_a_link_and_what_it_points_to_is_untouched() {
    let dir = tmp();
    let d = dir.path();
    let other = d.join("other.txt");
    std::fs::write(&other, "someone else's file").unwrap();
    let out = d.join("run");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&other, out.join(".gradtape-train.lock")).unwrap();
    let mut args = vec!["train", "regularized", "--epochs", "1", "--out", s(&out)];
    args.extend_from_slice(TINY);
    assert_bad_input(&gradtape(d, &args), &["--out", ".gradtape-train.lock is a symbolic link"]);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "someone else's file");
    assert_eq!(contents_names(&out), [".gradtape-train.lock"]);
}

/// A small tmpfs mounted on a folder for as long as it lives.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `512k`) at `dir`, or `None` (with the
    /// reason printed) where that is not allowed.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("skipping the full-disk case: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let res = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match res {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                eprintln!("skipping the full-disk case: mount failed: {other:?}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_picture_on_a_full_disk_leaves_the_previous_one_whole_and_no_temporary_file() {
    let dir = tmp();
    let d = dir.path();
    let out = trained(d);
    let disk = d.join("disk");
    let Some(_mounted) = Tmpfs::mount(&disk, "512k") else { return };
    let png = disk.join("existing.png");
    let c = ckpt(&out);
    let args = ["reconstruct", "--checkpoint", s(&c), "--n", "4", "--out", s(&png)];
    assert_ok(&gradtape(d, &args), "the first picture");
    let before = std::fs::read(&png).unwrap();
    // Fill the disk, leaving less than a picture of 20 digits needs.
    let filler = disk.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![1u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    let free = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&filler).unwrap().set_len(free - 8192).unwrap();
    let res = gradtape(d, &["reconstruct", "--checkpoint", s(&ckpt(&out)), "--n", "20", "--out", s(&png)]);
    assert_eq!(res.status.code(), Some(1), "{}", text(&res.stderr));
    let stderr = text(&res.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("existing.png") && stderr.contains("No space left"), "{stderr}");
    assert_eq!(std::fs::read(&png).unwrap(), before, "the previous picture was damaged");
    assert_eq!(contents_names(&disk), ["existing.png", "filler"], "a temporary file was left behind");
}

#[test]
fn a_closed_stdout_ends_nothing_early_and_never_panics() {
    let dir = tmp();
    let d = dir.path();
    let run = |args: &[&str]| -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gradtape"))
            .args(args)
            .current_dir(d)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gradtape starts");
        // The reader goes away before the first line: every write to stdout
        // is a broken pipe.
        drop(child.stdout.take());
        child.wait_with_output().expect("gradtape ends")
    };
    let out = d.join("run");
    let mut args = vec!["train", "regularized", "--epochs", "2", "--out", s(&out)];
    args.extend_from_slice(TINY);
    let res = run(&args);
    assert_eq!(res.status.code(), Some(0), "{}", text(&res.stderr));
    assert_eq!(text(&res.stderr), "", "nothing on stderr (no panic)");
    // Training went on to the end: both epochs' checkpoint and the report.
    let saved = gradtape_models::checkpoint::load::<f32>(ckpt(&out)).unwrap();
    assert_eq!(saved.metadata["epoch"], "2");
    assert!(out.join("index.html").is_file());
    let res = run(&["sample", "--checkpoint", s(&ckpt(&out)), "--out", "s.png"]);
    assert_eq!(res.status.code(), Some(0), "{}", text(&res.stderr));
    assert_eq!(text(&res.stderr), "");
    assert!(d.join("s.png").is_file());
}

#[test]
fn a_full_stdout_never_panics() {
    let dir = tmp();
    let d = dir.path();
    let full = d.join("full-node");
    if !mknod(&full, "1", "7") {
        return;
    }
    let out = trained(d);
    let res = Command::new(env!("CARGO_BIN_EXE_gradtape"))
        .args(["encode", "--checkpoint", s(&ckpt(&out)), "--out", "codes.csv"])
        .current_dir(d)
        .stdout(std::fs::OpenOptions::new().write(true).open(&full).unwrap())
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(0), "{}", text(&res.stderr));
    assert_eq!(text(&res.stderr), "");
    assert!(d.join("codes.csv").is_file());
}

#[test]
fn a_file_name_of_254_characters_is_written() {
    let dir = tmp();
    let d = dir.path();
    let out = trained(d);
    let name = format!("{}.csv", "c".repeat(250));
    assert_eq!(name.len(), 254);
    assert_ok(&gradtape(d, &["encode", "--checkpoint", s(&ckpt(&out)), "--out", &name]), "encode");
    assert!(d.join(&name).is_file());
    let mut names = contents_names(d);
    names.retain(|n| n != "run");
    assert_eq!(names, [name], "a temporary file was left behind");
}

#[test]
fn stale_temporary_files_of_interrupted_writes_are_removed_under_the_lock() {
    let dir = tmp();
    let d = dir.path();
    let out = trained(d);
    // What interrupted writes leave, and a file that only looks alike.
    for name in [".checkpoint.safetensors.a1B2c3.tmp", ".loss.png.XyZ789.tmp", ".notes.tmp", ".x.abcdef.tmp"]
    {
        std::fs::write(out.join(name), vec![0u8; 22]).unwrap();
    }
    let mut args = vec!["train", "regularized", "--resume", "--epochs", "2", "--out", s(&out)];
    args.extend_from_slice(TINY);
    let said = assert_ok(&gradtape(d, &args), "resume");
    assert!(said.contains("removed 2 temporary file(s) that an interrupted write left"), "{said}");
    let names = contents_names(&out);
    assert!(!names.iter().any(|n| n.starts_with(".checkpoint.") || n.starts_with(".loss.")), "{names:?}");
    assert!(names.contains(&".notes.tmp".to_string()) && names.contains(&".x.abcdef.tmp".to_string()));
}
