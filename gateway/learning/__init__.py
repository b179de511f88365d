"""The learning concern: when a review runs, what it may write, and what people decide about it.

- `install`: puts memory and the loop into a Runtime (`install_learning`);
- `loop`: the turn observer that decides when a review is due and runs it;
- `review`: what one review sees and may write; `announce`: what is posted to the chat after;
- `review_queue`: the durable queue of due reviews;
- `log`: the learning log (one record per review) and applying proposals;
- `proposals`: the rules for proposals (who decides, nothing proposed twice);
- `curator`: `hermes skills curate` and its weekly run, merging near-duplicate skills.

The review mechanics that know nothing of platforms stay in `agent/` (`agent.checkpoint`,
`agent.skill_writes`).
"""
