//! The `netlab lab` verbs: list, start, status, hint, check, answer, solution, reset.
//!
//! Every verb reads the progress from the cluster first and writes it back before it returns,
//! so two terminals (the host and `docker compose exec`) see one state. Setup records what it
//! makes and changes as it goes, before waiting on anything, so a setup cut short (Ctrl-C, a
//! refused fault) is still undone exactly by the next `start` or `reset`.

use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    catalog::{self, Entry},
    error::Error,
    iam,
    live::{Live, ObjRef},
    objective::{self, Outcome},
    progress::{LabProgress, Progress, Saved, SavedEnv, SavedRole, State},
    spec::{Lab, Objective, SetEnv, Step, Var},
};

/// How often the broken state and the solution's effect are looked at while waiting.
const POLL: Duration = Duration::from_millis(1000);
/// How long reset waits for a lab's namespaces to be gone.
const NAMESPACE_GONE: Duration = Duration::from_secs(60);

/// The runner over one catalogue and one cluster.
pub struct Runner<'a, L> {
    root: PathBuf,
    live: &'a mut L,
}

impl<'a, L: Live> Runner<'a, L> {
    /// A runner for the labs under `root`.
    pub fn new(root: PathBuf, live: &'a mut L) -> Self {
        Self { root, live }
    }

    /// `netlab lab list`.
    pub async fn list(&mut self, out: &mut impl Write) -> Result<(), Error> {
        let labs = catalog::load_all(&self.root)?;
        let progress = self.progress().await?;
        let mut rows = vec![["ID".to_string(), "TITLE".into(), "TOPIC".into(), "STATE".into()]];
        for e in &labs {
            let mut state = progress.state(&e.lab.id).text().to_string();
            if progress.current.as_deref() == Some(e.lab.id.as_str()) && state != "in progress" {
                state.push_str(" (running)");
            }
            rows.push([e.lab.id.clone(), e.lab.title.clone(), e.lab.topic.clone(), state]);
        }
        let _ = out.write_all(align(&rows).as_bytes());
        Ok(())
    }

    /// `netlab lab start ID`: cleans what an earlier lab left, sets this one up, waits until it
    /// is really broken, prints the task.
    pub async fn start(&mut self, id: &str, out: &mut impl Write) -> Result<(), Error> {
        let entry = catalog::find(&self.root, id)?;
        // Before anything changes: a cluster that cannot run the lab is refused untouched.
        for r in &entry.lab.requires {
            let probe = Objective {
                name: r.name.clone(),
                exec: None,
                object: Some(r.object.clone()),
                trace: None,
                answer: None,
                expect: r.expect.clone(),
            };
            let outcome = objective::observe(self.live, &probe, &[], &BTreeMap::new()).await;
            if !outcome.passed {
                return Err(Error::Unsupported {
                    id: id.to_string(),
                    needs: r.name.clone(),
                    observed: outcome.observed,
                    expected: outcome.expected,
                    otherwise: r.otherwise.clone(),
                });
            }
        }
        let mut progress = self.progress().await?;
        if let Some(previous) = progress.current.clone() {
            let _ = writeln!(out, "Cleaning up lab {previous} ...");
            self.cleanup(&mut progress, &previous, out).await?;
        }
        let vars = self.draw(&entry).await?;
        let lab = entry.render(&vars)?;
        let record = progress.lab(id);
        *record = LabProgress {
            state: State::InProgress,
            vars: vars.clone(),
            namespaces: lab.namespaces.clone(),
            started: Some(jiff::Timestamp::now().to_string()),
            passed: record.passed.clone(),
            ..LabProgress::default()
        };
        progress.current = Some(id.to_string());
        self.save(&mut progress).await?;

        let _ = writeln!(out, "Setting up lab {id}: {}", lab.title);
        if let Err(why) = self.steps(&entry, &lab, &lab.setup, &mut progress, out).await {
            return Err(self.abandon(&mut progress, id, why, out).await);
        }
        if !lab.broken.is_empty() {
            let _ = writeln!(out, "Waiting for the broken state ({} observation(s)) ...", lab.broken.len());
            let outcomes = self.until_all_pass(&lab, &lab.broken, &progress, lab.timeout(), out).await;
            if let Some(failed) = outcomes.iter().find(|o| !o.passed) {
                let why = format!(
                    "the broken state was not reached within {:?}: {}: observed {}; expected {}",
                    lab.timeout(),
                    failed.name,
                    failed.observed,
                    failed.expected
                );
                return Err(self.abandon(&mut progress, id, why, out).await);
            }
        }
        let _ = writeln!(out);
        print_task(&lab, out);
        Ok(())
    }

    /// `netlab lab status`.
    pub async fn status(&mut self, out: &mut impl Write) -> Result<(), Error> {
        let progress = self.progress().await?;
        let Some(id) = progress.current.clone() else {
            let _ = writeln!(
                out,
                "No lab in progress. `netlab lab list` shows the labs; `netlab lab start ID` starts one."
            );
            return Ok(());
        };
        let (_, lab, record) = self.current(&progress, &id)?;
        let _ = writeln!(out, "Lab {id} ({})", record.state.text());
        print_task(&lab, out);
        let _ = writeln!(out, "\nHints shown: {}/{}", record.hints.min(lab.hints.len()), lab.hints.len());
        for (i, q) in lab.questions.iter().enumerate() {
            let answered = record
                .answers
                .get(&(i + 1))
                .map_or("not answered".to_string(), |a| format!("answered {a:?}"));
            let _ = writeln!(out, "Question {}: {} ({answered})", i + 1, q.ask);
        }
        Ok(())
    }

    /// `netlab lab hint`: the next hint.
    pub async fn hint(&mut self, out: &mut impl Write) -> Result<(), Error> {
        let mut progress = self.progress().await?;
        let id = progress.current.clone().ok_or(Error::NoLab)?;
        let (_, lab, record) = self.current(&progress, &id)?;
        let total = lab.hints.len();
        if record.hints >= total {
            let _ = writeln!(
                out,
                "No more hints ({total}/{total} shown). `netlab lab solution` shows the reference fix."
            );
            return Ok(());
        }
        let n = record.hints + 1;
        let _ = writeln!(out, "Hint {n}/{total}: {}", lab.hints[n - 1].trim_end());
        progress.lab(&id).hints = n;
        self.save(&mut progress).await
    }

    /// `netlab lab check`: one line per objective; Ok(true) when every one passes.
    pub async fn check(&mut self, out: &mut impl Write) -> Result<bool, Error> {
        let mut progress = self.progress().await?;
        let id = progress.current.clone().ok_or(Error::NoLab)?;
        let (_, lab, record) = self.current(&progress, &id)?;
        let mut outcomes = Vec::new();
        for o in &lab.checks {
            let outcome = objective::observe(self.live, o, &lab.questions, &record.answers).await;
            print_outcome(&outcome, out);
            outcomes.push(outcome);
        }
        let passed = outcomes.iter().filter(|o| o.passed).count();
        if passed < outcomes.len() {
            let _ = writeln!(out, "\n{passed}/{} objectives pass.", outcomes.len());
            return Ok(false);
        }
        let _ = writeln!(
            out,
            "\nAll {} objectives pass: lab {id} passed.\n\n{}",
            outcomes.len(),
            lab.explanation.trim_end()
        );
        let record = progress.lab(&id);
        record.state = State::Passed;
        record.passed.get_or_insert_with(|| jiff::Timestamp::now().to_string());
        self.save(&mut progress).await?;
        Ok(true)
    }

    /// `netlab lab answer [--question N] TEXT`.
    pub async fn answer(
        &mut self,
        question: Option<usize>,
        text: &str,
        out: &mut impl Write,
    ) -> Result<(), Error> {
        let mut progress = self.progress().await?;
        let id = progress.current.clone().ok_or(Error::NoLab)?;
        let (_, lab, record) = self.current(&progress, &id)?;
        let total = lab.questions.len();
        if total == 0 {
            return Err(Error::Answer(format!(
                "lab {id} asks no questions; `netlab lab check` looks at the cluster"
            )));
        }
        let n = match question {
            Some(n) if n == 0 || n > total => {
                return Err(Error::Answer(format!(
                    "--question: Invalid value: {n}: lab {id} has {total} question(s), numbered from 1"
                )));
            }
            Some(n) => n,
            None => (1..=total).find(|n| !record.answers.contains_key(n)).unwrap_or(total),
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Answer("an answer must not be empty".into()));
        }
        progress.lab(&id).answers.insert(n, text.to_string());
        self.save(&mut progress).await?;
        let _ = writeln!(
            out,
            "Answer to question {n} recorded: {text:?}\n  ({})\n`netlab lab check` tells whether it is right.",
            lab.questions[n - 1].ask.trim()
        );
        Ok(())
    }

    /// `netlab lab solution [--apply]`: shows the reference fix, or applies it and waits until
    /// the checks observe it.
    pub async fn solution(&mut self, apply: bool, out: &mut impl Write) -> Result<bool, Error> {
        let mut progress = self.progress().await?;
        let id = progress.current.clone().ok_or(Error::NoLab)?;
        let (entry, lab, _) = self.current(&progress, &id)?;
        let vars = progress.labs.get(&id).map(|r| r.vars.clone()).unwrap_or_default();
        if !apply {
            for step in &lab.solution {
                let _ = writeln!(out, "{}", show_step(&entry, step, &vars)?);
            }
            for (i, q) in lab.questions.iter().enumerate() {
                let answer =
                    objective::expected_answer(self.live, q).await.unwrap_or_else(|e| format!("({e})"));
                let _ = writeln!(out, "netlab lab answer --question {} {answer:?}", i + 1);
            }
            return Ok(true);
        }
        let _ = writeln!(out, "Applying the reference solution of lab {id} ...");
        self.steps(&entry, &lab, &lab.solution, &mut progress, out).await.map_err(Error::Live)?;
        for (i, q) in lab.questions.iter().enumerate() {
            let answer = objective::expected_answer(self.live, q).await.map_err(Error::Live)?;
            let _ = writeln!(out, "Answer to question {}: {answer}", i + 1);
            progress.lab(&id).answers.insert(i + 1, answer);
        }
        self.save(&mut progress).await?;
        let checks: Vec<_> = lab.checks.iter().filter(|o| o.answer.is_none()).cloned().collect();
        let _ = writeln!(out, "Waiting for the checks to observe it ...");
        let outcomes = self.until_all_pass(&lab, &checks, &progress, lab.timeout(), out).await;
        for o in &outcomes {
            print_outcome(o, out);
        }
        Ok(outcomes.iter().all(|o| o.passed))
    }

    /// `netlab lab reset`: undoes the lab in progress.
    pub async fn reset(&mut self, out: &mut impl Write) -> Result<(), Error> {
        let mut progress = self.progress().await?;
        let Some(id) = progress.current.clone() else {
            let _ = writeln!(out, "No lab in progress; nothing to reset.");
            return Ok(());
        };
        self.cleanup(&mut progress, &id, out).await?;
        let _ = writeln!(out, "Lab {id} reset; the cluster is as it was before it.");
        Ok(())
    }

    async fn progress(&mut self) -> Result<Progress, Error> {
        Progress::load(self.live).await.map_err(Error::Live)
    }

    async fn save(&mut self, progress: &mut Progress) -> Result<(), Error> {
        progress.save(self.live).await.map_err(Error::Live)
    }

    /// The lab in progress, rendered with its run's values.
    fn current(&self, progress: &Progress, id: &str) -> Result<(Entry, Lab, LabProgress), Error> {
        let entry = catalog::find(&self.root, id)?;
        let record = progress.labs.get(id).cloned().unwrap_or_default();
        let lab = entry.render(&record.vars)?;
        Ok((entry, lab, record))
    }

    /// Draws the run's values.
    async fn draw(&mut self, entry: &Entry) -> Result<BTreeMap<String, String>, Error> {
        let mut vars = BTreeMap::new();
        for (name, var) in &entry.lab.vars {
            let value = match var {
                Var::RandomName(prefix) => format!("{prefix}-{}", random_suffix()),
                Var::OneOf(options) => options[random_index(options.len())].clone(),
                Var::Node(which) | Var::NodeIp(which) => {
                    let mut ready = self.ready_nodes().await?;
                    ready.sort();
                    let pick = if which == "any" {
                        (!ready.is_empty()).then(|| random_index(ready.len()))
                    } else {
                        which.parse::<usize>().ok().map(|n| n - 1).filter(|i| *i < ready.len())
                    };
                    let Some(i) = pick else {
                        return Err(Error::Setup {
                            id: entry.lab.id.clone(),
                            why: format!(
                                "it needs {} Ready node(s) and the cluster has {} ({})",
                                if which == "any" { "1".to_string() } else { which.clone() },
                                ready.len(),
                                if ready.is_empty() { "none".to_string() } else { ready.join(", ") }
                            ),
                        });
                    };
                    let node = ready[i].clone();
                    if matches!(var, Var::NodeIp(_)) {
                        self.internal_ip(&node).await.map_err(|why| Error::Var { name: name.clone(), why })?
                    } else {
                        node
                    }
                }
            };
            vars.insert(name.clone(), value);
        }
        Ok(vars)
    }

    async fn internal_ip(&mut self, node: &str) -> Result<String, String> {
        let obj = self.live.get("nodes", "", node).await?.ok_or_else(|| format!("node {node} not found"))?;
        obj["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .map(String::from)
            .ok_or_else(|| format!("node {node} reports no InternalIP"))
    }

    async fn ready_nodes(&mut self) -> Result<Vec<String>, Error> {
        let nodes = self.live.list("nodes", "", "").await.map_err(Error::Live)?;
        Ok(nodes
            .iter()
            .filter(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
                    && n["spec"]["unschedulable"] != true
            })
            .filter_map(|n| n["metadata"]["name"].as_str().map(String::from))
            .collect())
    }

    /// Runs steps in order, recording in progress (and saving) what each makes or changes.
    async fn steps(
        &mut self,
        entry: &Entry,
        lab: &Lab,
        steps: &[Step],
        progress: &mut Progress,
        out: &mut impl Write,
    ) -> Result<(), String> {
        let id = lab.id.clone();
        let vars = progress.lab(&id).vars.clone();
        for step in steps {
            match step {
                Step::Apply(file) => {
                    let text = entry.manifest(file, &vars).map_err(|e| e.to_string())?;
                    let mut printed = String::new();
                    let applied = self.live.apply(file, &text, &mut printed).await;
                    let _ = out.write_all(printed.as_bytes());
                    let applied = applied.map_err(|e| format!("applying {file}: {e}"))?;
                    let record = progress.lab(&id);
                    for (obj, created) in applied {
                        let owned = lab.namespaces.contains(&obj.namespace)
                            || (obj.resource == "namespaces" && lab.namespaces.contains(&obj.name));
                        if created && !owned && !record.created.contains(&obj) {
                            record.created.push(obj);
                        }
                    }
                }
                Step::Edit(e) => {
                    let target = &e.target;
                    let object = ObjRef {
                        resource: target.resource.clone(),
                        namespace: target.namespace.clone(),
                        name: target.name.clone(),
                    };
                    let mut obj =
                        self.live.get(&target.resource, &target.namespace, &target.name).await?.ok_or_else(
                            || {
                                format!(
                                    "{} {:?} not found in namespace {:?}",
                                    target.resource, target.name, target.namespace
                                )
                            },
                        )?;
                    let value = field(&obj, &e.field).ok_or_else(|| {
                        format!(
                            "{} {}/{}: no field {}",
                            target.resource, target.namespace, target.name, e.field
                        )
                    })?;
                    if !value.contains(&e.replace) {
                        return Err(format!(
                            "{} {}/{}: {} does not contain {:?} (was it changed by hand?)",
                            target.resource, target.namespace, target.name, e.field, e.replace
                        ));
                    }
                    let record = progress.lab(&id);
                    if !record.saved.iter().any(|s| s.object == object && s.field == e.field) {
                        record.saved.push(Saved {
                            object: object.clone(),
                            field: e.field.clone(),
                            value: value.clone(),
                        });
                        self.save_quietly(progress).await?;
                    }
                    set_field(&mut obj, &e.field, value.replacen(&e.replace, &e.with, 1));
                    self.live.put(&target.resource, &target.namespace, &obj).await?;
                    let _ = writeln!(out, "{}/{} edited", singular(&target.resource), target.name);
                }
                Step::SetEnv(e) => self.set_env(&id, e, progress, out).await?,
                Step::Delete(t) => {
                    if self.live.delete(&t.resource, &t.namespace, &t.name).await? {
                        let _ = writeln!(out, "{}/{} deleted", singular(&t.resource), t.name);
                    }
                }
                Step::Exec(x) => {
                    let (run, _) = objective::run_traced(self.live, x).await?;
                    if run.code != 0 {
                        return Err(format!(
                            "{} exited {}: {}{}",
                            x.command.join(" "),
                            run.code,
                            run.stdout.trim(),
                            run.stderr.trim()
                        ));
                    }
                }
                Step::IamRole(r) => {
                    let before = iam::role_state(self.live, &r.name).await?;
                    let record = progress.lab(&id);
                    if !record.roles.iter().any(|s| s.name == r.name) {
                        record.roles.push(SavedRole { name: r.name.clone(), state: before.clone() });
                        self.save_quietly(progress).await?;
                    }
                    if before.is_none() {
                        let Some(file) = &r.trust else {
                            return Err(format!("iam role {:?} does not exist", r.name));
                        };
                        let trust = entry.manifest(file, &vars).map_err(|e| e.to_string())?;
                        iam::create_role(self.live, &r.name, &trust).await?;
                        let _ = writeln!(out, "iam role/{} created", r.name);
                    }
                    for arn in &r.attach {
                        iam::attach(self.live, &r.name, arn).await?;
                        let _ = writeln!(out, "iam role/{}: {arn} attached", r.name);
                    }
                    for arn in &r.detach {
                        if iam::detach(self.live, &r.name, arn).await? {
                            let _ = writeln!(out, "iam role/{}: {arn} detached", r.name);
                        }
                    }
                }
                Step::IamOidcProvider(p) => {
                    if let Some(arn) = iam::create_oidc_provider(self.live, &p.url, &p.client_ids).await? {
                        let _ = writeln!(out, "iam {arn} created");
                        progress.lab(&id).oidc_providers.push(arn);
                        self.save_quietly(progress).await?;
                    }
                }
                Step::Wait(o) => {
                    let _ = writeln!(out, "Waiting until {} ...", o.name);
                    let outcomes = self
                        .until_all_pass(lab, std::slice::from_ref(o.as_ref()), progress, lab.timeout(), out)
                        .await;
                    if let Some(failed) = outcomes.iter().find(|o| !o.passed) {
                        return Err(format!(
                            "{} did not happen within {:?}: observed {}; expected {}",
                            failed.name,
                            lab.timeout(),
                            failed.observed,
                            failed.expected
                        ));
                    }
                }
            }
            self.save_quietly(progress).await?;
        }
        Ok(())
    }

    /// `kubectl set env`: the container's env is saved (once per lab run) before the first
    /// change, then each variable set in place or appended, or removed. A write that lost a race
    /// with a controller's is tried again on the object as it is then.
    async fn set_env(
        &mut self,
        id: &str,
        e: &SetEnv,
        progress: &mut Progress,
        out: &mut impl Write,
    ) -> Result<(), String> {
        let Some((plural, kind, templated)) = crate::spec::workload(&e.resource) else {
            return Err(format!("setEnv: resource {:?} has no pod template", e.resource));
        };
        let object = ObjRef { resource: plural.into(), namespace: e.namespace.clone(), name: e.name.clone() };
        for attempt in 0.. {
            let mut obj = self
                .live
                .get(plural, &e.namespace, &e.name)
                .await?
                .ok_or_else(|| format!("{kind} {:?} not found in namespace {:?}", e.name, e.namespace))?;
            let containers = containers_mut(&mut obj, templated);
            let names: Vec<String> =
                containers.iter().filter_map(|c| c["name"].as_str().map(String::from)).collect();
            let Some(container) = containers.iter_mut().find(|c| c["name"] == e.container.as_str()) else {
                return Err(format!(
                    "{kind}/{}: no container {:?} (it has {})",
                    e.name,
                    e.container,
                    names.join(", ")
                ));
            };
            let before = env_of(container);
            let record = progress.lab(id);
            if !record.envs.iter().any(|s| s.object == object && s.container == e.container) {
                record.envs.push(SavedEnv {
                    object: object.clone(),
                    container: e.container.clone(),
                    env: before.clone(),
                });
                self.save_quietly(progress).await?;
            }
            let mut env = before.clone();
            for (name, value) in &e.env {
                let at = env.iter().position(|v| v["name"] == name.as_str());
                match (value, at) {
                    (Some(value), Some(i)) => {
                        env[i] = serde_json::json!({"name": name, "value": value.to_string()})
                    }
                    (Some(value), None) => {
                        env.push(serde_json::json!({"name": name, "value": value.to_string()}))
                    }
                    (None, Some(i)) => {
                        env.remove(i);
                    }
                    (None, None) => {}
                }
            }
            if env == before {
                let _ = writeln!(out, "{kind}/{}: env already as wanted", e.name);
                return Ok(());
            }
            set_env_of(container, env);
            match self.live.put(plural, &e.namespace, &obj).await {
                Ok(_) => {
                    let _ = writeln!(out, "{kind}/{} env updated", e.name);
                    return Ok(());
                }
                Err(why) if attempt < 4 && why.contains("has been modified") => continue,
                Err(why) => return Err(why),
            }
        }
        Ok(())
    }

    async fn save_quietly(&mut self, progress: &mut Progress) -> Result<(), String> {
        progress.save(self.live).await
    }

    /// Observes `objectives` until all pass or `timeout`, printing each change of the count.
    async fn until_all_pass(
        &mut self,
        lab: &Lab,
        objectives: &[crate::spec::Objective],
        progress: &Progress,
        timeout: Duration,
        out: &mut impl Write,
    ) -> Vec<Outcome> {
        let answers = progress.labs.get(&lab.id).map(|r| r.answers.clone()).unwrap_or_default();
        let deadline = Instant::now() + timeout;
        let mut last = usize::MAX;
        loop {
            let mut outcomes = Vec::new();
            for o in objectives {
                outcomes.push(objective::observe(self.live, o, &lab.questions, &answers).await);
            }
            let passed = outcomes.iter().filter(|o| o.passed).count();
            if passed != last {
                let _ = writeln!(out, "  {passed}/{} in place", outcomes.len());
                last = passed;
            }
            if passed == outcomes.len() || Instant::now() >= deadline {
                return outcomes;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Puts a container's env back as `saved` has it, if it differs now.
    async fn restore_env(&mut self, saved: &SavedEnv, out: &mut impl Write) -> Result<(), String> {
        let o = &saved.object;
        let Some((plural, kind, templated)) = crate::spec::workload(&o.resource) else {
            return Ok(());
        };
        for attempt in 0.. {
            let Some(mut obj) = self.live.get(plural, &o.namespace, &o.name).await? else { return Ok(()) };
            let Some(container) = containers_mut(&mut obj, templated)
                .iter_mut()
                .find(|c| c["name"] == saved.container.as_str())
            else {
                return Ok(());
            };
            if env_of(container) == saved.env {
                return Ok(());
            }
            set_env_of(container, saved.env.clone());
            match self.live.put(plural, &o.namespace, &obj).await {
                Ok(_) => {
                    let _ = writeln!(out, "{kind}/{} env restored", o.name);
                    return Ok(());
                }
                Err(why) if attempt < 4 && why.contains("has been modified") => continue,
                Err(why) => return Err(why),
            }
        }
        Ok(())
    }

    /// Cleans up after a failed setup and returns the error to report.
    async fn abandon(
        &mut self,
        progress: &mut Progress,
        id: &str,
        why: String,
        out: &mut impl Write,
    ) -> Error {
        let _ = writeln!(out, "Setup failed: {why}\nCleaning up ...");
        if let Err(e) = self.cleanup(progress, id, out).await {
            return Error::Setup { id: id.to_string(), why: format!("{why}; cleaning up also failed: {e}") };
        }
        Error::Setup { id: id.to_string(), why }
    }

    /// Undoes lab `id`: deletes what it created, restores what it edited, deletes its namespaces
    /// and waits until they are gone.
    async fn cleanup(
        &mut self,
        progress: &mut Progress,
        id: &str,
        out: &mut impl Write,
    ) -> Result<(), Error> {
        let record = progress.lab(id).clone();
        for obj in record.created.iter().rev() {
            if self.live.delete(&obj.resource, &obj.namespace, &obj.name).await.map_err(Error::Live)? {
                let _ = writeln!(out, "{}/{} deleted", singular(&obj.resource), obj.name);
            }
        }
        for saved in record.saved.iter().rev() {
            let o = &saved.object;
            let live = self.live.get(&o.resource, &o.namespace, &o.name).await.map_err(Error::Live)?;
            if let Some(mut obj) = live
                && field(&obj, &saved.field).as_deref() != Some(saved.value.as_str())
            {
                set_field(&mut obj, &saved.field, saved.value.clone());
                self.live.put(&o.resource, &o.namespace, &obj).await.map_err(Error::Live)?;
                let _ = writeln!(out, "{}/{} restored", singular(&o.resource), o.name);
            }
        }
        for saved in record.envs.iter().rev() {
            self.restore_env(saved, out).await.map_err(Error::Live)?;
        }
        for arn in &record.oidc_providers {
            if iam::delete_oidc_provider(self.live, arn).await.map_err(Error::Live)? {
                let _ = writeln!(out, "iam {arn} deleted");
            }
        }
        for saved in record.roles.iter().rev() {
            for line in
                iam::restore(self.live, &saved.name, saved.state.as_ref()).await.map_err(Error::Live)?
            {
                let _ = writeln!(out, "{line}");
            }
        }
        for ns in &record.namespaces {
            if self.live.delete("namespaces", "", ns).await.map_err(Error::Live)? {
                let _ = writeln!(out, "namespace/{ns} deleted");
            }
        }
        let deadline = Instant::now() + NAMESPACE_GONE;
        for ns in &record.namespaces {
            while self.live.get("namespaces", "", ns).await.map_err(Error::Live)?.is_some() {
                if Instant::now() >= deadline {
                    return Err(Error::Live(format!("namespace {ns} still exists after {NAMESPACE_GONE:?}")));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        let record = progress.lab(id);
        let passed = record.passed.clone();
        *record = LabProgress {
            state: if passed.is_some() { State::Passed } else { State::NotStarted },
            passed,
            ..LabProgress::default()
        };
        if progress.current.as_deref() == Some(id) {
            progress.current = None;
        }
        self.save(progress).await
    }
}

/// A step as a person would type it.
fn show_step(entry: &Entry, step: &Step, vars: &BTreeMap<String, String>) -> Result<String, Error> {
    Ok(match step {
        Step::Apply(file) => {
            let text = entry.manifest(file, vars)?;
            format!("netlab apply -f - <<'EOF'\n{}\nEOF", text.trim_end())
        }
        Step::Edit(e) => format!(
            "# In {} {}/{}, field {}: replace\n#   {:?}\n# with\n#   {:?}\n# (netlab get {} {} -n {} -o yaml > x.yaml; edit; netlab apply -f x.yaml)",
            singular(&e.target.resource),
            e.target.namespace,
            e.target.name,
            e.field,
            e.replace,
            e.with,
            e.target.resource,
            e.target.name,
            e.target.namespace
        ),
        Step::SetEnv(e) => {
            let kind = crate::spec::workload(&e.resource).map_or(e.resource.as_str(), |(_, k, _)| k);
            let kind = kind.split('.').next().unwrap_or(kind);
            let mut line = format!("kubectl set env {kind}/{}", e.name);
            if !e.namespace.is_empty() {
                line.push_str(&format!(" -n {}", e.namespace));
            }
            line.push_str(&format!(" -c {}", e.container));
            for (name, value) in &e.env {
                match value {
                    Some(v) => line.push_str(&format!(" {}", shell_word(&format!("{name}={v}")))),
                    None => line.push_str(&format!(" {name}-")),
                }
            }
            line
        }
        Step::Delete(t) if t.namespace.is_empty() => format!("netlab delete {} {}", t.resource, t.name),
        Step::Delete(t) => format!("netlab delete {} {} -n {}", t.resource, t.name, t.namespace),
        Step::Wait(o) => format!("# wait until {}", o.name),
        Step::IamRole(r) => {
            let mut lines = Vec::new();
            if let Some(file) = &r.trust {
                let text = entry.manifest(file, vars)?;
                lines.push(format!(
                    "aws iam create-role --role-name {} --assume-role-policy-document '{}'",
                    r.name,
                    text.trim()
                ));
            }
            for arn in &r.attach {
                lines.push(format!("aws iam attach-role-policy --role-name {} --policy-arn {arn}", r.name));
            }
            for arn in &r.detach {
                lines.push(format!("aws iam detach-role-policy --role-name {} --policy-arn {arn}", r.name));
            }
            lines.join("\n")
        }
        Step::IamOidcProvider(p) => format!(
            "aws iam create-open-id-connect-provider --url {} --client-id-list {}",
            p.url,
            p.client_ids.join(" ")
        ),
        Step::Exec(x) => format!(
            "netlab exec -n {} {} -- {}",
            x.namespace,
            x.pod.as_deref().map_or_else(
                || format!("$(pod matching {})", x.selector.as_deref().unwrap_or("")),
                String::from
            ),
            x.command.join(" ")
        ),
    })
}

fn print_task(lab: &Lab, out: &mut impl Write) {
    let _ = writeln!(out, "{}  [{}]", lab.title, lab.topic);
    let _ = writeln!(out, "Question {}: {}\n", lab.question.number, lab.question.text.trim());
    let _ = writeln!(out, "{}", lab.task.trim_end());
    for (i, q) in lab.questions.iter().enumerate() {
        let _ = writeln!(
            out,
            "\nQuestion {}: {}  (netlab lab answer --question {} TEXT)",
            i + 1,
            q.ask.trim(),
            i + 1
        );
    }
    let _ = writeln!(
        out,
        "\n`netlab lab check` checks your fix; `netlab lab hint` gives a hint; `netlab lab reset` undoes the lab."
    );
}

fn print_outcome(o: &Outcome, out: &mut impl Write) {
    let mark = if o.passed { "✔" } else { "✘" };
    let _ = writeln!(out, "{mark} {}: observed {}; expected {}", o.name, o.observed, o.expected);
}

/// A field of an object by a dotted path of map keys, as text.
fn field(obj: &Value, path: &str) -> Option<String> {
    let mut v = obj;
    for key in path.split('.') {
        v = v.get(key)?;
    }
    v.as_str().map(String::from)
}

fn set_field(obj: &mut Value, path: &str, value: String) {
    let mut v = obj;
    for key in path.split('.') {
        if !v.is_object() {
            *v = Value::Object(Default::default());
        }
        v = v.as_object_mut().map(|m| m.entry(key.to_string()).or_insert(Value::Null)).expect("an object");
    }
    *v = Value::String(value);
}

/// The containers of a workload (`spec.template.spec.containers`) or pod (`spec.containers`).
fn containers_mut(obj: &mut Value, templated: bool) -> &mut [Value] {
    let spec = if templated { &mut obj["spec"]["template"]["spec"] } else { &mut obj["spec"] };
    match spec.get_mut("containers").and_then(Value::as_array_mut) {
        Some(list) => list.as_mut_slice(),
        None => &mut [],
    }
}

/// A container's env list (empty when it has none).
fn env_of(container: &Value) -> Vec<Value> {
    container["env"].as_array().cloned().unwrap_or_default()
}

/// Sets a container's env; an empty list removes the field, as the apiserver serves it.
fn set_env_of(container: &mut Value, env: Vec<Value>) {
    if let Some(c) = container.as_object_mut() {
        if env.is_empty() {
            c.remove("env");
        } else {
            c.insert("env".into(), Value::Array(env));
        }
    }
}

/// A word as a POSIX shell reads it back: bare when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_=.,:/@%+".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// `configmaps` → `configmap`, for kubectl-style lines.
fn singular(resource: &str) -> String {
    match resource {
        "networkpolicies" => "networkpolicy".into(),
        "networkchaos" | "dnschaos" | "podchaos" => resource.into(),
        r => r.strip_suffix('s').unwrap_or(r).into(),
    }
}

/// Columns padded as kubectl's tabwriter pads them (three spaces).
fn align(rows: &[[String; 4]]) -> String {
    let mut widths = [0usize; 4];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Kubernetes' generateName alphabet (no vowels, no confusable characters).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn random_suffix() -> String {
    uuid::Uuid::new_v4().as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn random_index(n: usize) -> usize {
    let b = uuid::Uuid::new_v4().as_u128();
    (b % n as u128) as usize
}

#[cfg(test)]
mod tests;
