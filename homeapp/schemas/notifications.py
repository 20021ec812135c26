"""Payloads of commentNotification and ratingNotification."""
from marshmallow import ValidationError, validate, validates_schema

from homeapp.schemas import fields
from homeapp.schemas.common import BaseSchema, NotificationSchema, RecordId, Text, UserId, Username


class CommentSchema(BaseSchema):
    commentID = RecordId(required=True)
    comment = Text(required=True)
    from_ = Username(required=True, data_key="from", attribute="from")
    houseworkerID = UserId(required=True)
    date = fields.String(required=True, validate=validate.Length(min=1, max=32))
    read = fields.Boolean(load_default=False)


class CommentNotificationSchema(BaseSchema):
    newComment = fields.Nested(CommentSchema, required=True)
    notificationObj = fields.Nested(NotificationSchema, required=True)

    @validates_schema
    def addressed_to_the_houseworker(self, data, **kwargs):
        if data["notificationObj"]["to"] != data["newComment"]["houseworkerID"]:
            raise ValidationError("Must be newComment.houseworkerID.", "notificationObj")


class RatingNotificationSchema(BaseSchema):
    client = Username(required=True)
    houseworker = Username(required=True)
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    houseworkerID = UserId(required=True)
    notification = fields.Nested(NotificationSchema, required=True)

    @validates_schema
    def addressed_to_the_houseworker(self, data, **kwargs):
        if data["notification"]["to"] != data["houseworkerID"]:
            raise ValidationError("Must be houseworkerID.", "notification")


comment_notification_schema = CommentNotificationSchema()
rating_notification_schema = RatingNotificationSchema()
