//! One case of the property: an actor key and a sequence of management requests.

use super::*;

pub(super) async fn run_case(
    kind: ActorKind,
    actor_shape: Shape,
    others: Vec<Shape>,
    ops: Vec<Op>,
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    let account = acct("acct_1");
    let external = principal::principal(&actor_shape, &account);
    let neutral_allowed = matches!(
        kind,
        ActorKind::External {
            neutral_allowed: true
        }
    );
    let h = Harness::with(|b| {
        let b = b
            .scope_implications(implications())
            .read_only_scopes(read_only_scopes())
            .rate_limits(RateLimitConfig::default().default_quota(Some(DEFAULT_QUOTA)))
            .manager_config(
                ManagerConfig::default()
                    .max_active_keys(None)
                    .environment_neutral_principals(neutral_allowed),
            );
        match kind {
            ActorKind::Key => b,
            ActorKind::External { .. } => {
                b.credential_verifier(principal::verifier_of(external.clone()))
            }
        }
    });
    let manager = h.manager.clone();
    let (actor, actor_record): (Identity, KeyRecord) = match kind {
        ActorKind::Key => {
            let actor_key = manager
                .create(account.clone(), actor_shape.new_key("actor"))
                .await
                .unwrap();
            let actor = h
                .gate
                .verify_key(actor_key.key.expose_secret())
                .await
                .unwrap();
            let record = h.store.get(actor.key_id()).await.unwrap().unwrap();
            (actor, record)
        }
        ActorKind::External { .. } => {
            tally.external_cases += 1;
            let actor = principal::identity(&h, &external.ips).await;
            (actor, principal::as_record(&external))
        }
    };
    // A principal naming no environment, on this deployment of two, may not manage
    // keys at all unless the deployment allows it.
    let env_refused = matches!(
        kind,
        ActorKind::External {
            neutral_allowed: false
        }
    ) && external.environment.is_none();
    let is_external = matches!(kind, ActorKind::External { .. });
    let granted_actor = implications().expand(&actor_record.scopes);

    // Keys the actor may try to act on: others in its account (any environment), one
    // in another account, and itself.
    let mut known: Vec<KeyId> = vec![actor.key_id().clone()];
    for (i, shape) in others.iter().enumerate() {
        let owner = if i == 0 {
            acct("acct_2")
        } else {
            account.clone()
        };
        let created = manager.create(owner, shape.new_key("other")).await.unwrap();
        known.push(created.view.id);
    }

    let acting = manager.acting_as(&actor);
    let check = |r: &KeyRecord, what: &str| -> Result<(), TestCaseError> {
        let granted = implications().expand(&r.scopes);
        no_more_powerful(r, &actor_record, &granted, &granted_actor).map_err(|why| {
            TestCaseError::fail(format!(
                "{what} gave {} more power than its maker ({why}):\n key {r:?}\n actor {actor_record:?}",
                r.id
            ))
        })
    };
    let record = |id: &KeyId| {
        let store = h.store.clone();
        let id = id.clone();
        async move { store.get(&id).await.unwrap() }
    };

    for op in ops {
        match op {
            Op::Create { shape, narrow } => {
                let new = if narrow {
                    NewKey::named("narrow").scopes(shape.narrowed_scopes(&actor_record))
                } else {
                    shape.new_key("made")
                };
                match acting.create(new).await {
                    Ok(created) => {
                        succeeded(tally, env_refused, is_external)?;
                        let r = record(&created.view.id).await.unwrap();
                        check(&r, "create")?;
                        known.push(created.view.id);
                    }
                    Err(e) => {
                        refusal(&e, tally, env_refused)?;
                        tally.refused += 1;
                        prop_assert!(
                            matches!(
                                e,
                                ManageError::Escalation(_)
                                    | ManageError::Widening(_)
                                    | ManageError::EnvironmentRequired
                                    | ManageError::InvalidRequest(_)
                            ),
                            "{e:?}"
                        );
                    }
                }
            }
            Op::Update {
                target,
                from,
                fields,
                clear_expiry,
                clear_rate,
                narrow,
            } => {
                let id = known[target % known.len()].clone();
                let before = record(&id).await;
                let update =
                    if narrow {
                        let mut u = KeyUpdate::default();
                        u.scopes = fields[0].then(|| from.narrowed_scopes(&actor_record));
                        u.ips = Some(
                            actor_record
                                .ips
                                .entries()
                                .iter()
                                .map(|n| n.to_string())
                                .collect(),
                        );
                        u.expires_at = Some(actor_record.expires_at);
                        u.rate_limit = Some(actor_record.rate_limit);
                        u
                    } else {
                        let mut u = KeyUpdate::default();
                        u.scopes =
                            fields[0].then(|| from.scopes.iter().map(|s| s.to_string()).collect());
                        u.ips = fields[1].then(|| from.ips.iter().map(|s| s.to_string()).collect());
                        u.expires_at = (fields[2] || clear_expiry).then(|| {
                            if clear_expiry {
                                None
                            } else {
                                from.expires_at()
                            }
                        });
                        u.rate_limit = (fields[3] || clear_rate).then(|| {
                            if clear_rate {
                                None
                            } else {
                                from.rate()
                            }
                        });
                        u
                    };
                match acting.update(&id, update).await {
                    Ok(_) => {
                        succeeded(tally, env_refused, is_external)?;
                        check(before.as_ref().unwrap(), "updating a key")?;
                        check(&record(&id).await.unwrap(), "update")?;
                    }
                    Err(e) => {
                        refusal(&e, tally, env_refused)?;
                        if matches!(e, ManageError::NotFound) {
                            tally.not_found += 1;
                        } else {
                            tally.refused += 1;
                        }
                        prop_assert_eq!(frozen(&record(&id).await), frozen(&before));
                    }
                }
            }
            Op::Roll(target) => {
                let id = known[target % known.len()].clone();
                let before = record(&id).await;
                match acting.roll(&id, None).await {
                    Ok(rolled) => {
                        succeeded(tally, env_refused, is_external)?;
                        let r = record(&id).await.unwrap();
                        check(&r, "roll")?;
                        // The new secret is the key's, with nothing more.
                        let who = h.gate.verify_key(rolled.key.expose_secret()).await;
                        if let Ok(who) = who {
                            prop_assert_eq!(who.key_id(), &id);
                        }
                    }
                    Err(e) => {
                        refusal(&e, tally, env_refused)?;
                        if matches!(e, ManageError::NotFound) {
                            tally.not_found += 1;
                        } else {
                            tally.refused += 1;
                        }
                        prop_assert_eq!(frozen(&record(&id).await), frozen(&before));
                    }
                }
            }
            Op::Revoke(target) => {
                let id = known[target % known.len()].clone();
                let before = record(&id).await;
                match acting.revoke(&id).await {
                    Ok(Revoked::Now) => {
                        succeeded(tally, env_refused, is_external)?;
                        check(before.as_ref().unwrap(), "revoking a key")?;
                    }
                    // Idempotent: an already revoked key is left as it was.
                    Ok(Revoked::Already) => {
                        prop_assert_eq!(frozen(&record(&id).await), frozen(&before));
                    }
                    Err(e) => {
                        refusal(&e, tally, env_refused)?;
                        if matches!(e, ManageError::NotFound) {
                            tally.not_found += 1;
                        } else {
                            tally.refused += 1;
                        }
                        prop_assert_eq!(frozen(&record(&id).await), frozen(&before));
                    }
                }
            }
        }
        // Keys of another environment than the actor's, or another account, are never
        // changed by it (checked by `check` for those it did change).
    }
    Ok(())
}

/// Counts a request that succeeded, which a principal refused for its missing
/// environment never makes.
fn succeeded(tally: &mut Tally, env_refused: bool, external: bool) -> Result<(), TestCaseError> {
    prop_assert!(!env_refused, "a principal with no environment managed keys");
    tally.ok += 1;
    if external {
        tally.external_ok += 1;
    }
    Ok(())
}

/// Checks a refusal: a principal with no environment, where that is not allowed, is
/// refused for exactly that, whatever it asks.
fn refusal(e: &ManageError, tally: &mut Tally, env_refused: bool) -> Result<(), TestCaseError> {
    if env_refused {
        prop_assert!(matches!(e, ManageError::EnvironmentRequired), "{e:?}");
        tally.environment_required += 1;
    }
    Ok(())
}
