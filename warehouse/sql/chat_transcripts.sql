-- Every rollout as a chat in TRL's prompt-completion shape: the messages before its last assistant
-- turn (prompt_messages, and as one string, prompt) and that turn's content (completion), with the
-- reasoning kept inside it as <think>…</think> (unless the model already wrote it there). The whole
-- chat is list_append(prompt_messages, {'role': 'assistant', 'content': completion}): stored, it
-- would store every completion twice.
WITH shaped AS (
    SELECT
        r.rollout_id,
        r.task_id,
        r.reasoning,
        list_transform(r.messages, lambda m: {'role': m.role, 'content': m.content}) AS msgs,
        len(r.messages)
            - list_position(list_reverse(list_transform(r.messages, lambda m: m.role)), 'assistant') + 1
            AS last_assistant
    FROM rollouts r
    WHERE list_contains(list_transform(r.messages, lambda m: m.role), 'assistant')
),
parts AS (
    SELECT
        rollout_id,
        task_id,
        msgs[1:last_assistant - 1] AS context,
        CASE WHEN coalesce(reasoning, '') <> '' AND NOT starts_with(ltrim(msgs[last_assistant].content), '<think>')
             THEN '<think>' || reasoning || '</think>' || chr(10) || msgs[last_assistant].content
             ELSE msgs[last_assistant].content END AS completion
    FROM shaped
)
SELECT
    rollout_id,
    task_id,
    context AS prompt_messages,
    array_to_string(list_transform(context, lambda m: m.content), chr(10) || chr(10)) AS prompt,
    completion
FROM parts
