ALTER TABLE "conversations" ADD COLUMN "title_set" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "model" varchar(200);--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "system_prompt" text;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "current_message_id" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "parent_id" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "depth" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "jump_id" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "jump_depth" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "feedback_rating" varchar(8);--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "feedback_comment" text;--> statement-breakpoint
-- Existing data: each conversation becomes one branch (every message follows the one
-- before it, the current message is the last), and a title other than the default was
-- chosen by its owner.
UPDATE "messages" AS m SET "parent_id" = o."previous", "depth" = o."position" - 1
FROM (
  SELECT "id", lag("id") OVER w AS "previous", row_number() OVER w AS "position"
  FROM "messages"
  WINDOW w AS (PARTITION BY "conversation_id" ORDER BY "created_at", "id")
) AS o
WHERE m."id" = o."id";--> statement-breakpoint
-- Jump pointers on a single branch depend on the depth alone: a message at depth d
-- jumps to depth d - t, t the smallest term of d written greedily as a sum of 2^k - 1
-- (the same pointers messages.ts gives a new message, one parent at a time).
WITH RECURSIVE "terms" ("d", "rest", "term") AS (
  SELECT DISTINCT "depth", "depth", 0 FROM "messages" WHERE "depth" > 0
  UNION ALL
  SELECT "d", "rest" - t."size", t."size"
  FROM "terms"
  CROSS JOIN LATERAL (
    SELECT (1 << (length(ltrim(("rest" + 1)::bit(32)::text, '0')) - 1)) - 1 AS "size"
  ) AS t
  WHERE "rest" > 0
)
UPDATE "messages" AS m SET "jump_id" = a."id", "jump_depth" = a."depth"
FROM "terms" AS j, "messages" AS a
WHERE j."rest" = 0 AND m."depth" = j."d"
  AND a."conversation_id" = m."conversation_id" AND a."depth" = j."d" - j."term";--> statement-breakpoint
UPDATE "messages" SET "jump_id" = "id", "jump_depth" = 0 WHERE "depth" = 0;--> statement-breakpoint
UPDATE "conversations" AS c SET "current_message_id" = l."id"
FROM (
  SELECT DISTINCT ON ("conversation_id") "conversation_id", "id"
  FROM "messages"
  ORDER BY "conversation_id", "created_at" DESC, "id" DESC
) AS l
WHERE c."id" = l."conversation_id";--> statement-breakpoint
UPDATE "conversations" SET "title_set" = true WHERE "title" <> 'New conversation';--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_parent_id_messages_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "messages_conversation_parent_created_id_idx" ON "messages" USING btree ("conversation_id","parent_id","created_at","id");--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_feedback_rating_check" CHECK ("messages"."feedback_rating" in ('up', 'down'));